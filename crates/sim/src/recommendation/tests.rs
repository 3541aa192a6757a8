//! Tests of the recommendation scenario.

use super::*;

pub(crate) fn config() -> RecommendationConfig {
    RecommendationConfig {
        n_items: 30,
        dim: 6,
        n_topics: 5,
        slate_size: 3,
        history_len: 2,
        concurrent_sessions: 64,
        ticks: 40,
        reward: RewardKind::Click,
        choice: ChoiceConfig::default(),
        dynamics: DynamicsConfig::default(),
        catalog: CatalogConfig {
            clickbait_share: 0.2,
            clickbait_appeal: 1.5,
            ..CatalogConfig::default()
        },
        segments: vec![ShopperSegment {
            name: String::new(),
            share: 1.0,
            topic: None,
            preference_spread: 0.3,
            preference_strength: 2.0,
            price_sensitivity: 0.5,
            patience: 5.0,
        }],
    }
}

#[test]
fn choice_probabilities_are_a_softmax() {
    let mut p = Vec::new();
    let none = choice_probabilities(&[1.0, 0.0, 2.0], 0.5, 1.0, &mut p);
    let e = [1.0f32.exp(), 1.0, 2.0f32.exp(), 0.5f32.exp()];
    let total: f32 = e.iter().sum();
    for (got, want) in p.iter().zip(&e) {
        assert!((got - want / total).abs() < 1e-6);
    }
    assert!((none - e[3] / total).abs() < 1e-6);
}

/// A quiet world: no fatigue, drift, patience loss or leaving, so a
/// shopper's utilities stay fixed while we count its choices.
fn frozen() -> RecommendationConfig {
    let mut c = config();
    c.concurrent_sessions = 1;
    c.ticks = 1_000_000;
    c.dynamics = DynamicsConfig {
        interest_drift: 0.0,
        fatigue_rise: 0.0,
        fatigue_decay: 1.0,
        no_click_cost: 0.0,
        click_cost: 0.0,
        clickbait_cost: 0.0,
        mismatch_cost: 0.0,
        leave_probability: 0.0,
    };
    c
}

/// Simulated choice frequencies match the softmax probabilities: over
/// 40,000 steps each slate position's (and no-click's) count lies within
/// 4 binomial standard errors of `n·p` (false alarm ≈ 6e-5 per option).
#[test]
fn logit_choice_frequencies_match_softmax() {
    let model = frozen().validate(std::path::Path::new(".")).unwrap();
    let mut env = RecommendationEnv::new(model.clone());
    env.reset(3);
    let slate = [4usize, 11, 17];
    let (pref, beta, fatigue) = env.shopper_states().remove(0);
    let utilities: Vec<f32> = slate
        .iter()
        .map(|&i| model.utility(i, &pref, beta, &fatigue))
        .collect();
    let mut probs = Vec::new();
    let none = choice_probabilities(&utilities, 0.0, 1.0, &mut probs);
    probs.push(none);
    let n = 40_000;
    let mut counts = [0u32; 4];
    for _ in 0..n {
        let step = env.step(&slate);
        let clicked = step.item_rewards.iter().position(|&r| r > 0.0);
        counts[clicked.unwrap_or(3)] += 1;
    }
    for (count, p) in counts.iter().zip(&probs) {
        let p = f64::from(*p);
        let se = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (f64::from(*count) - n as f64 * p).abs() < 4.0 * se,
            "{counts:?} vs {probs:?}"
        );
    }
}

/// Clicking an item moves the preference toward it.
#[test]
fn interest_drifts_toward_clicked_items() {
    let mut c = frozen();
    c.dynamics.interest_drift = 0.3;
    c.choice.no_click_utility = -20.0; // always click the single item shown
    c.slate_size = 1;
    let model = c.validate(std::path::Path::new(".")).unwrap();
    let mut env = RecommendationEnv::new(model.clone());
    env.reset(1);
    let item = 7;
    let features = &model.catalog().items[item].features;
    let cos = |pref: &[f32]| {
        let norm = pref.iter().map(|p| p * p).sum::<f32>().sqrt();
        pref.iter().zip(features).map(|(p, x)| p * x).sum::<f32>() / norm
    };
    let before = cos(&env.shopper_states()[0].0);
    for _ in 0..5 {
        env.step(&[item]);
    }
    let after = cos(&env.shopper_states()[0].0);
    assert!(after > before + 0.5 && after > 0.9, "{before} → {after}");
}

/// Sessions end: with a patience of 5 and a cost of at least 1 per step
/// (no click) or 0.2 per click, every session ends within 26 steps, and
/// new shoppers take the freed slots.
#[test]
fn sessions_end_and_slots_refill() {
    let mut c = config();
    c.dynamics.leave_probability = 0.0;
    c.dynamics.mismatch_cost = 0.0;
    c.dynamics.clickbait_cost = 0.0;
    let model = c.validate(std::path::Path::new(".")).unwrap();
    let mut env = RecommendationEnv::new(model);
    env.reset(2);
    let slates: Vec<usize> = (0..64)
        .flat_map(|s| [s % 30, (s + 1) % 30, (s + 2) % 30])
        .collect();
    let mut ended = 0.0;
    for _ in 0..40 {
        let step = env.step(&slates);
        ended += step.info[4];
        for obs in &step.obs {
            assert!(obs.features[0] <= 26.0, "a session outlived its patience");
        }
    }
    assert!(ended >= 64.0, "only {ended} sessions ended");
}

#[test]
fn batch_episodes_are_deterministic() {
    let model = config().validate(std::path::Path::new(".")).unwrap();
    let mut a = RecommendationEnv::new(model.clone());
    let mut b = RecommendationEnv::new(model);
    shoplab_env::check::check_batch_determinism(&mut a, &mut b, 5, 6).unwrap();
}

#[test]
fn single_item_closed_form_matches_the_slate_formula() {
    for reward in [
        RewardKind::SignedClick,
        RewardKind::Click,
        RewardKind::Revenue,
    ] {
        let mut c = config();
        c.reward = reward;
        let model = c.validate(std::path::Path::new(".")).unwrap();
        let mut env = RecommendationEnv::new(model.clone());
        env.reset(9);
        let (pref, beta, fatigue) = env.shopper_states().remove(0);
        for item in 0..30 {
            let slate = model.expected_reward(&[item], &pref, beta, &fatigue);
            let single = model.expected_single(item, &pref, beta, &fatigue);
            assert!((slate - single).abs() < 1e-5, "{reward:?} item {item}");
        }
    }
}

#[test]
fn validation_names_keys() {
    let base = std::path::Path::new(".");
    let mut c = config();
    c.slate_size = 31;
    assert_eq!(c.validate(base).unwrap_err().key, "slate_size");
    let mut c = config();
    c.dim = 0;
    assert_eq!(c.validate(base).unwrap_err().key, "dim");
    let mut c = config();
    c.history_len = 21;
    assert_eq!(c.validate(base).unwrap_err().key, "history_len");
    let mut c = config();
    c.catalog.path = Some("no-such-items.csv".into());
    let e = c.validate(base).unwrap_err();
    assert_eq!(e.key, "catalog.path");
    assert!(e.rule.contains("no-such-items.csv"));
}

/// The fixed-slate baseline's ranking puts first an item made better for
/// everyone (quality + 10 raises its utility, and so its click probability,
/// for every shopper) and last one made worse, and is reproducible.
#[test]
fn mean_reward_ranking_follows_quality() {
    let mut model = config().validate(std::path::Path::new(".")).unwrap();
    let mut catalog = (*model.catalog).clone();
    catalog.items[7].quality += 10.0;
    catalog.items[3].quality -= 10.0;
    model.catalog = std::sync::Arc::new(catalog);
    let ranked = model.items_by_mean_reward(5, 500);
    assert_eq!(ranked.len(), 30);
    assert_eq!(ranked[0], 7);
    assert_eq!(ranked[29], 3);
    assert_eq!(model.items_by_mean_reward(5, 500), ranked);
}
