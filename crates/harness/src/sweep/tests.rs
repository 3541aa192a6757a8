//! Sweeps: grids, seeded random draws, refusals, values written in place.

use super::*;

fn spec(text: &str) -> SweepSpec {
    toml::from_str(text).unwrap()
}

#[test]
fn grids_take_every_combination_first_key_slowest() {
    let s = spec(
        r#"[parameters]
        "shop.inventory" = [20, 40]
        "policies.q.learning_rate" = [0.05, 0.1, 0.2]"#,
    );
    let configs = s.configurations(1).unwrap();
    assert_eq!(configs.len(), 6);
    assert_eq!(configs[0].id, "c01");
    assert_eq!(
        configs[1].describe(),
        "shop.inventory = 20, policies.q.learning_rate = 0.1"
    );
    assert_eq!(
        configs[5].describe(),
        "shop.inventory = 40, policies.q.learning_rate = 0.2"
    );
}

#[test]
fn random_sweeps_are_seeded_and_stay_in_range() {
    let s = spec(
        r#"method = "random"
        count = 200
        seed = 9
        [parameters]
        "policies.q.learning_rate" = { min = 0.001, max = 0.3, scale = "log" }
        "shop.inventory" = { min = 10, max = 12, integer = true }
        "policies.q.gamma" = [0.9, 0.99]"#,
    );
    let a = s.configurations(1).unwrap();
    assert_eq!(
        a,
        s.configurations(2).unwrap(),
        "the sweep's own seed rules"
    );
    let mut counts = [0; 3];
    let mut below = 0;
    for c in &a {
        let lr = c.values[0].1.as_float().unwrap();
        assert!((0.001..=0.3).contains(&lr));
        // Log-uniform: P(lr < sqrt(0.001 * 0.3)) = 1/2.
        below += usize::from(lr < (0.001_f64 * 0.3).sqrt());
        counts[(c.values[1].1.as_integer().unwrap() - 10) as usize] += 1;
    }
    // 200 draws: each share within 4.5 standard errors of its mean.
    let sd = |p: f64| (200.0 * p * (1.0 - p)).sqrt();
    assert!((below as f64 - 100.0).abs() < 4.5 * sd(0.5), "{below}");
    for n in counts {
        assert!(
            (n as f64 - 200.0 / 3.0).abs() < 4.5 * sd(1.0 / 3.0),
            "{counts:?}"
        );
    }
    let other = SweepSpec {
        seed: Some(10),
        ..s.clone()
    };
    assert_ne!(a, other.configurations(1).unwrap());
}

#[test]
fn bad_sweeps_are_refused_with_their_key() {
    let cases = [
        (r#"[parameters]"#, "sweep.parameters", "at least one"),
        (
            r#"[parameters]
            "run.seeds" = [[1], [2]]"#,
            "sweep.parameters.run.seeds",
            "replicates",
        ),
        (
            r#"[parameters]
            "shop.inventory" = []"#,
            "sweep.parameters.shop.inventory",
            "1 to",
        ),
        (
            r#"[parameters]
            "shop.inventory" = [1, 1]"#,
            "sweep.parameters.shop.inventory[1]",
            "repeats",
        ),
        (
            r#"[parameters]
            "shop.inventory" = { min = 1, max = 2 }"#,
            "sweep.parameters.shop.inventory",
            "grid needs a list",
        ),
        (
            r#"method = "random"
            [parameters]
            "shop.inventory" = [1]"#,
            "sweep.count",
            "needs a count",
        ),
        (
            r#"count = 3
            [parameters]
            "shop.inventory" = [1]"#,
            "sweep.count",
            "random",
        ),
        (
            r#"method = "random"
            count = 2
            [parameters]
            "x.lr" = { min = 0, max = 1, scale = "log" }"#,
            "sweep.parameters.x.lr.min",
            "> 0",
        ),
        (
            r#"[parameters]
            "inventory" = [1]"#,
            "sweep.parameters.inventory",
            "inside the family",
        ),
        (
            r#"[parameters]
            a.b = [1]"#,
            "sweep.parameters.a",
            "in quotes",
        ),
    ];
    for (text, key, words) in cases {
        let e = spec(text).configurations(1).unwrap_err();
        assert_eq!(e.key, key, "{text}");
        assert!(e.rule.contains(words), "{text}: {}", e.rule);
    }
    let mut big = String::from("[parameters]\n");
    for k in 0..4 {
        big.push_str(&format!("\"x.k{k}\" = [1, 2, 3, 4, 5, 6]\n"));
    }
    assert!(
        spec(&big)
            .configurations(1)
            .unwrap_err()
            .rule
            .contains("1296 configurations")
    );
}

#[test]
fn values_are_written_in_place() {
    let text = "name = \"x\"\n[shop]\ninventory = 10 # units\n\n[[policies]]\nkind = \"q\"\nlearning_rate = 0.5\n\n[[policies]]\nkind = \"r\"\nname = \"a.b\"\n";
    let names = vec!["q".to_string(), "a.b".to_string()];
    let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
    apply(
        &mut doc,
        "shop.inventory",
        &toml::Value::Integer(40),
        &names,
    )
    .unwrap();
    apply(
        &mut doc,
        "policies.q.learning_rate",
        &toml::Value::Float(0.1),
        &names,
    )
    .unwrap();
    apply(
        &mut doc,
        "policies.a.b.epsilon",
        &toml::Value::Float(0.2),
        &names,
    )
    .unwrap();
    apply(
        &mut doc,
        "policies[1].gamma",
        &toml::Value::Float(0.9),
        &names,
    )
    .unwrap();
    let out = doc.to_string();
    assert!(
        out.starts_with("name = \"x\"\n[shop]\ninventory = 40 # units\n"),
        "{out}"
    );
    assert!(out.contains("learning_rate = 0.1\n"), "{out}");
    assert!(
        out.contains("epsilon = 0.2") && out.contains("gamma = 0.9"),
        "{out}"
    );
    let parsed: toml::Table = out.parse().unwrap();
    assert_eq!(parsed["policies"][1]["epsilon"].as_float(), Some(0.2));
    for (key, words) in [
        ("policies.zz.lr", "no policy"),
        ("policies[5].lr", "2 policies"),
        ("shop.inventory.x", "is a value"),
    ] {
        let e = apply(&mut doc, key, &toml::Value::Integer(1), &names).unwrap_err();
        assert!(e.contains(words), "{key}: {e}");
    }
}
