//! The consent commands embedded in a host tool speak in the tool's name (`greet telemetry
//! ...`), not `clearcount ...`, a command its users may not have; the `clearcount` command
//! keeps its own.

use clearcount_tests::*;

const NOW: &str = "2026-11-25T10:00:00Z";

#[test]
fn hints_name_the_command_the_user_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cc");
    let run = greet(&dir, NOW, None, &["alice"]);
    assert!(run.status.success(), "{run:?}");

    let status = greet(&dir, NOW, None, &["telemetry", "status"]);
    let text = stdout(&status);
    assert!(status.status.success(), "{status:?}");
    assert!(text.contains("`greet telemetry notify on`"), "{text}");
    assert!(!text.contains("`clearcount "), "{text}");

    let early = greet(
        &dir,
        NOW,
        None,
        &["telemetry", "export", "--week", "2026-11-23"],
    );
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(!early.status.success());
    assert!(
        err.starts_with("greet telemetry: week 2026-11-23 is not over yet; `greet telemetry view --week 2026-11-23`"),
        "{err}"
    );

    let on = greet(&dir, NOW, None, &["telemetry", "on"]);
    let err = String::from_utf8_lossy(&on.stderr);
    assert!(!on.status.success());
    assert!(err.contains("greet telemetry: "), "{err}");
    assert!(!err.contains("clearcount: "), "{err}");

    let own = clearcount(&dir, NOW, &["status"]);
    assert!(stdout(&own).contains("`clearcount notify on`"), "{own:?}");
    let early = clearcount(&dir, NOW, &["export", "--week", "2026-11-23"]);
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(err.starts_with("clearcount: week 2026-11-23"), "{err}");
}
