//! Property tests: no parser of on-disk data panics on arbitrary bytes, and valid data
//! round-trips.

use std::collections::BTreeMap;

use clearcount::format::{self, Meta};
use clearcount::mode::{Consent, Mode, ModeFile, ModeSetting};
use clearcount::{LocalReport, Week};
use proptest::prelude::*;

fn valid_file_with(names: &[(String, u64)]) -> Vec<u8> {
    let meta = Meta {
        program: "greet".into(),
        version: "1.0.0".into(),
        os: "linux".into(),
        arch: "x86_64".into(),
        week: Week::parse("2026-11-16").unwrap(),
    };
    let mut w = format::initial_words(&meta).unwrap();
    let mut alloc = w[format::W_ALLOC] as usize;
    for (i, (name, v)) in names.iter().enumerate() {
        let r = alloc;
        w[r] = *v;
        w[r + 1] = name.len() as u64;
        for (j, x) in format::pack_bytes(name.as_bytes()).into_iter().enumerate() {
            w[r + 2 + j] = x;
        }
        alloc += format::record_words(name.len());
        w[format::HEADER_WORDS + format::TABLE_HEADER + i] = r as u64;
    }
    w[format::W_ALLOC] = alloc as u64;
    format::words_to_bytes(&w)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn counter_file_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20_000)) {
        let _ = format::parse_bytes(&bytes);
    }

    #[test]
    fn damaged_valid_files_never_panic(
        flips in proptest::collection::vec((0usize..16_384, any::<u8>()), 1..16),
        cut in proptest::option::of(0usize..16_384),
    ) {
        let names = vec![("invocations".to_string(), 3), ("engine:pcre2".to_string(), 9)];
        let mut b = valid_file_with(&names);
        prop_assert_eq!(format::parse_bytes(&b).unwrap().counters.len(), 2);
        for (i, x) in flips {
            b[i] = x;
        }
        if let Some(c) = cut {
            b.truncate(c);
        }
        let _ = format::parse_bytes(&b);
    }

    #[test]
    fn counter_files_round_trip(names in proptest::collection::btree_map("[a-z][a-z0-9:/._-]{0,40}", any::<u64>(), 0..40)) {
        let list: Vec<(String, u64)> = names.clone().into_iter().collect();
        let s = format::parse_bytes(&valid_file_with(&list)).unwrap();
        prop_assert_eq!(s.counters, names);
    }

    #[test]
    fn mode_file_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = ModeFile::parse(&bytes);
    }

    #[test]
    fn mode_file_text_never_panics(text in "(mode|program|consent|retention-weeks|#| |on|off|local|[a-z]{1,5}|[0-9]{1,3}|2026-11-16T00:00:00Z|\n){0,40}") {
        let _ = ModeFile::parse(text.as_bytes());
    }

    #[test]
    fn mode_files_round_trip(
        global in proptest::option::of((0u8..3, proptest::option::of(0i64..4_000_000_000))),
        programs in proptest::collection::btree_map("[a-z0-9][a-z0-9._/-]{0,20}", (0u8..3, proptest::option::of(0i64..4_000_000_000)), 0..5),
        consents in proptest::collection::btree_map("[a-z0-9][a-z0-9._/-]{0,20}", ("[a-z0-9.]{1,10}/[a-z]{1,8}", any::<u64>()), 0..5),
        retention in proptest::option::of(1u32..=520),
        notify in any::<bool>(),
    ) {
        let mode = |m: u8| [Mode::Off, Mode::Local, Mode::On][usize::from(m)];
        let f = ModeFile {
            global: global.map(|(m, since)| ModeSetting { mode: mode(m), since }),
            programs: programs.into_iter().map(|(k, (m, since))| (k, ModeSetting { mode: mode(m), since })).collect(),
            consents: consents.into_iter().map(|(k, (origin, index))| (k, Consent { origin, index })).collect(),
            retention_weeks: retention,
            notify_uploads: notify,
        };
        prop_assert_eq!(ModeFile::parse(f.render().as_bytes()).unwrap(), f);
    }

    #[test]
    fn report_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = LocalReport::parse(&bytes);
    }

    #[test]
    fn report_json_shapes_never_panic(text in r#"(\{|\}|\[|\]|"format"|"week"|"programs"|"name"|"counters"|"2026-11-16"|:|,|1|-1|18446744073709551616|null|"x"){0,60}"#) {
        let _ = LocalReport::parse(text.as_bytes());
    }

    #[test]
    fn reports_round_trip(counters in proptest::collection::btree_map("[a-z][a-z0-9:._-]{0,30}", any::<u64>(), 0..20)) {
        let mut r = LocalReport::new(Week::parse("2026-11-16").unwrap());
        r.programs.push(clearcount::report::ProgramCounts {
            name: "greet".into(),
            version: "1.0.0".into(),
            os: "linux".into(),
            arch: "aarch64".into(),
            counters: counters.into_iter().collect::<BTreeMap<_, _>>(),
        });
        prop_assert_eq!(LocalReport::parse(r.to_json().as_bytes()).unwrap(), r);
    }
}
