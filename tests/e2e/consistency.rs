//! Consistency under change: the torture writer rewrites its series while a
//! slowed-down rsync copies it. The copy made through snaprsync must be a
//! single point in time; the same check must catch the tearing of a copy made
//! by plain rsync of the live tree, which proves the check can fail.

use crate::support::assert_a_live_copy_is_torn;
use crate::support::rig::{Remote, Rig};
use testbed::torture::{self, Config, Writer};

const CFG: Config = Config { files: 200, size: 64 * 1024 };
/// 12.8 MB at 8000 KiB/s: each copy takes about 1.6 s, while the writer
/// finishes a generation every few hundred milliseconds at most.
const BWLIMIT: &str = "--bwlimit=8000";
const MIN_GENERATIONS_DURING_COPY: u64 = 2;

#[test]
fn snapshot_copy_is_consistent_and_live_copy_is_torn() {
    // The writer churns ~12.8 MB per generation and a snapshot pins one
    // generation's extents: leave btrfs room (the image is sparse).
    let rig = Rig::build("consistency").size(1024).start();
    let writer = Writer::start(&rig.src(), CFG).expect("start torture writer");
    writer.wait_for(1);

    // Through snaprsync: every copy is consistent although it overlaps
    // several generations.
    for attempt in 0..2 {
        let dest = rig.dest(&format!("snap{attempt}"));
        let before = writer.generation();
        let out = rig.pull(Remote::Snaprsync, &[BWLIMIT], &dest);
        let after = writer.generation();
        assert!(
            after >= before + MIN_GENERATIONS_DURING_COPY,
            "the copy overlapped only generations {before}..{after}; it must overlap at least {MIN_GENERATIONS_DURING_COPY} to mean anything (took {:.2?})",
            out.elapsed
        );
        let verdict = torture::check(&dest).expect("read copy");
        assert!(
            verdict.consistent(),
            "snaprsync copy {attempt} (made during generations {before}..={after}) is not point-in-time: {verdict}\n--- snaprsync log ---\n{}",
            rig.log()
        );
        let (lo, hi) = (verdict.min_gen().unwrap(), verdict.max_gen().unwrap());
        assert!(before <= lo && hi <= after + 1, "copy holds generations {lo}..={hi}, outside {before}..={}", after + 1);
        eprintln!("snaprsync copy {attempt}: {verdict} (writer went {before}..={after} during the copy)");
    }

    // Plain rsync of the live tree: the same check must see the tearing.
    assert_a_live_copy_is_torn(&rig, writer, "plain rsync", |dest| {
        rig.rsync(Remote::Plain).arg("-a").arg(BWLIMIT).arg(rig.remote_dir(&rig.src())).arg(dest).run()
    });
}
