//! The two roles a run can play: [`rsync`], standing in for rsync on the
//! side being backed up, and [`exec`], any other backup program. Each says
//! what its program reads and how it is started, and hands the rest to the
//! one lifecycle in [`crate::run`].

pub mod exec;
pub mod rsync;
