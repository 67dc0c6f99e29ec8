//! One run's life, shared by both roles: the [`lifecycle`] in order, its
//! resources as [`guard`]s, the [`hook`]s around the snapshot, the
//! [`journal`] written before a snapshot exists, the [`sweep`] of what dead
//! runs left, and the run's [`record`] in the history.

pub mod guard;
pub mod hook;
pub mod journal;
pub mod lifecycle;
pub mod record;
pub mod sweep;
