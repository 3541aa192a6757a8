use super::*;
use std::path::Path;

const HEADER: &str =
    "episode,session,step,period,stock,action,position,reward,propensity,terminated,truncated";

fn parse(text: &str) -> Result<Log, LogError> {
    parse_csv(
        "log.csv",
        text.as_bytes(),
        &ReadOptions { n_actions: Some(4) },
    )
}

fn refused(text: &str) -> String {
    parse(text).expect_err("a bad log").to_string()
}

#[test]
fn a_good_log_reads_column_by_column() {
    let log = parse(&format!(
        "{HEADER}\n0,0,0,0,5,2,0,1.5,0.25,0,0\n0,1,0,0,5,3,0,0,0.25,0,0\n0,0,1,1,4,1,0,-2e-3,1,1,0\n0,1,1,1,5,0,0,0,0.5,false,true\n"
    ))
    .unwrap();
    assert_eq!(log.features, ["period", "stock"]);
    assert_eq!(log.len(), 4);
    assert_eq!(log.session, [0, 1, 0, 1]);
    assert_eq!(log.features_of(2), [1.0, 4.0]);
    assert_eq!(log.action, [2, 3, 1, 0]);
    assert_eq!(log.reward[2], -0.002);
    assert_eq!(log.terminated, [false, false, true, false]);
    assert_eq!(log.truncated, [false, false, false, true]);
    assert_eq!(log.actions_seen(), 4);
}

#[test]
fn slates_have_one_row_per_position() {
    let log = parse(&format!(
        "{HEADER}\n0,0,0,0,5,2,0,1,0.25,0,0\n0,0,0,0,5,3,1,0,0.25,0,0\n0,0,1,1,5,1,0,0,0.25,0,1\n0,0,1,1,5,0,1,0,0.25,0,1\n"
    ))
    .unwrap();
    assert_eq!(log.position, [0, 1, 0, 1]);
}

#[test]
fn each_rule_names_the_row_and_column() {
    let row = |cells: &str| format!("{HEADER}\n{cells}\n");
    let cases = [
        (
            row("0,0,0,0,5,2,0,1,0,0,0"),
            "row 2, column `propensity`: must be a probability in (0, 1] (found 0)",
        ),
        (row("0,0,0,0,5,2,0,1,1.5,0,0"), "row 2, column `propensity`"),
        (
            row("0,0,0,0,5,2,0,1,NaN,0,0"),
            "row 2, column `propensity`: must be a finite number",
        ),
        (row("0,0,0,0,5,2,0,1,-0.1,0,0"), "column `propensity`"),
        (
            row("0,0,0,0,5,4,0,1,0.5,0,0"),
            "row 2, column `action`: is 4, not one of the 4 actions",
        ),
        (
            row("0,0,0,0,5,-1,0,1,0.5,0,0"),
            "row 2, column `action`: must be a whole number",
        ),
        (row("0,0,0,0,5,1,0,inf,0.5,0,0"), "row 2, column `reward`"),
        (
            row("0,0,0,x,5,1,0,1,0.5,0,0"),
            "row 2, column `period`: must be a finite number (found `x`)",
        ),
        (
            row("0,0,0,0,5,1,0,1,0.5,2,0"),
            "row 2, column `terminated`: must be 0 or 1",
        ),
        (
            row("0,0,1,0,5,1,0,1,0.5,0,0"),
            "row 2: episode 0, session 0: a session starts at step 0",
        ),
        (
            row("0,0,0,0,5,1,0,1,0.5,0,0\n0,0,2,0,5,1,0,1,0.5,0,0"),
            "row 3: episode 0, session 0: steps out of order",
        ),
        (
            row("0,0,0,0,5,1,0,1,0.5,0,0\n0,0,0,0,5,1,0,1,0.5,0,0"),
            "row 3: episode 0, session 0: steps out of order",
        ),
        (
            row("0,0,0,0,5,1,0,1,0.5,1,0\n0,0,1,0,5,1,0,1,0.5,0,0"),
            "the session ended at step 0",
        ),
        (
            row("0,0,0,0,5,1,0,1,0.5,0"),
            "row 2: has 10 fields, the header 11",
        ),
        (
            "episode,session,step,action,position,reward,terminated,truncated\n0,0,0,1,0,1,0,0\n"
                .into(),
            "row 1, column `propensity`: is missing",
        ),
        (
            "episode,session,step,x,x,action,position,reward,propensity,terminated,truncated\n"
                .into(),
            "row 1, column `x`: appears twice",
        ),
        (format!("{HEADER}\n"), "log.csv: has a header but no rows"),
        (String::new(), "log.csv: is empty"),
        ("\n \n".into(), "log.csv: is empty"),
    ];
    for (text, expected) in cases {
        let message = refused(&text);
        assert!(message.starts_with("log.csv: "), "{message}");
        assert!(message.contains(expected), "`{message}` lacks `{expected}`");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}

#[test]
fn non_utf8_is_refused_with_its_row_and_column() {
    let mut bytes = format!("{HEADER}\n0,0,0,0,5,2,0,1,0.5,0,0\n0,0,1,").into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b",5,2,0,1,0.5,0,0\n");
    let e = parse_csv("log.csv", &bytes, &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(e, "log.csv: row 3, column `period`: is not UTF-8");
}

#[test]
fn written_logs_read_back_and_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    let mut writer = LogWriter::create(&path, &["period", "stock"]).unwrap();
    for step in 0..3u32 {
        writer
            .write(&LogRow {
                episode: 7,
                session: 0,
                step,
                features: &[step as f32, 0.1],
                action: 2,
                position: 0,
                reward: 0.1 + f64::from(step),
                propensity: 1.0 / 3.0,
                terminated: step == 2,
                truncated: false,
            })
            .unwrap();
    }
    assert!(!path.exists(), "nothing is in place before finish");
    assert_eq!(writer.finish().unwrap(), 3);
    let log = read_csv(&path, &ReadOptions { n_actions: Some(3) }).unwrap();
    assert_eq!(log.features, ["period", "stock"]);
    assert_eq!(log.reward, [0.1, 1.1, 2.1]);
    assert_eq!(log.propensity[0], 1.0 / 3.0, "floats round-trip exactly");
    assert_eq!(log.x[1], 0.1f32);
    let again = LogWriter::create(&path, &["period"])
        .err()
        .unwrap()
        .to_string();
    assert!(again.contains("exists already"), "{again}");
    // An unfinished writer leaves nothing behind.
    let other = dir.path().join("other.csv");
    drop(LogWriter::create(&other, &[]).unwrap());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// The shipped OBD sample, against counts taken from the raw file here:
/// 10,000 impressions, 80 items, 3 positions, the clicks, and one column
/// per user-feature level but the first.
#[test]
fn the_open_bandit_dataset_reads_with_obps_preprocessing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/obd");
    for behaviour in ["random", "bts"] {
        let file = root.join(format!("{behaviour}/all/all.csv"));
        let text = std::fs::read_to_string(&file).unwrap();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        let clicks = rows.iter().filter(|r| r[4] == "1").count();
        let levels: usize = (6..10)
            .map(|j| {
                rows.iter()
                    .map(|r| r[j])
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
                    - 1
            })
            .sum();
        let obd = crate::obd::read_obd(&file).unwrap();
        assert_eq!(obd.log.len(), 10_000);
        assert_eq!(obd.n_actions, 80);
        assert_eq!(obd.positions, 3);
        assert_eq!(obd.log.features.len(), levels, "{behaviour}");
        assert!((obd.ctr() - clicks as f64 / 10_000.0).abs() < 1e-15);
        // Row by row (the file is in timestamp order): position − 1, one
        // level on per user feature unless it is the first.
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(obd.log.action[i].to_string(), r[2]);
            assert_eq!(
                u64::from(obd.log.position[i]) + 1,
                r[3].parse::<u64>().unwrap()
            );
            assert_eq!(obd.log.propensity[i], r[5].parse::<f64>().unwrap());
            assert!(obd.log.features_of(i).iter().sum::<f32>() <= 4.0);
        }
        // The log format carries it whole.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("obd.csv");
        obd.log.write_csv(&out).unwrap();
        let back = read_csv(
            &out,
            &ReadOptions {
                n_actions: Some(80),
            },
        )
        .unwrap();
        assert_eq!(back, obd.log);
    }
}

/// `.npy` inputs: each malformed file is refused with its reason, and a
/// good one is read at each round's position.
#[test]
fn npy_arrays_are_read_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, header: &str, data: &[u8]| {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(data);
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let f8 = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    // Two rounds at positions 1 and 0, two actions, two positions.
    let good = file(
        "good.npy",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 2), }",
        &f8(&[0.9, 0.3, 0.1, 0.7, 0.6, 0.2, 0.4, 0.8]),
    );
    let (values, n) = crate::npy::read_npy(&good, &[1, 0], true).unwrap();
    assert_eq!((values, n), (vec![0.3, 0.7, 0.6, 0.4], 2));
    let cases = [
        (
            "{'descr': '>f8', 'fortran_order': False, 'shape': (2, 2), }",
            f8(&[0.5; 4]),
            "holds `>f8` values",
        ),
        (
            "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }",
            f8(&[0.5; 4]),
            "Fortran order",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }",
            f8(&[0.5; 6]),
            "has shape [3, 2]",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            f8(&[0.5; 3]),
            "holds 24 bytes of data",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            f8(&[0.5, 0.5, 0.5, 0.6]),
            "round 1 (position 0): probabilities sum to 1.1",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            f8(&[0.5, 0.5, f64::NAN, 0.5]),
            "element [1, 0, 0] is NaN",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 1), }",
            f8(&[0.5; 4]),
            "has 1 positions; log row 1 is at position 1",
        ),
    ];
    for (i, (header, data, expected)) in cases.iter().enumerate() {
        let path = file(&format!("bad{i}.npy"), header, data);
        let positions: &[u16] = if i == 6 { &[1, 0] } else { &[0, 0] };
        let e = crate::npy::read_npy(&path, positions, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "`{e}` lacks `{expected}`");
    }
    let not_npy = dir.path().join("x.npy");
    std::fs::write(&not_npy, "p0,p1\n0.5,0.5\n").unwrap();
    let e = crate::npy::read_npy(&not_npy, &[0], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not a .npy file"), "{e}");
}
