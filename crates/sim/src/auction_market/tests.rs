use super::*;
use shoplab_env::batch::BatchEnv;

fn env(markets: u32, edit: impl FnOnce(&mut AuctionMarketConfig)) -> AuctionMarketEnv {
    let mut config = AuctionMarketConfig::sp_oracle(markets, 1_000);
    edit(&mut config);
    AuctionMarketEnv::new(config.validate().expect("valid config"))
}

#[test]
fn the_best_ad_has_the_highest_expected_value() {
    let model = AuctionMarketConfig::sp_oracle(1, 1).validate().unwrap();
    let catalog = model.catalog();
    let context = [0.3, -1.2, 0.5, 2.0, -0.1, 1.0];
    for bidder in 0..6 {
        let (ad, ctr, value) = catalog.best_ad(bidder, &context);
        for i in 0..12 {
            let row = &catalog.weights[(bidder * 12 + i) * 6..][..6];
            let logit: f64 = row.iter().zip(&context).map(|(w, x)| w * x).sum();
            let v = catalog.values[bidder * 12 + i] / (1.0 + (-logit).exp());
            assert!(v <= ctr * value + 1e-15, "ad {i} beats ad {ad}");
        }
        assert!((-4.0..-3.0).contains(&catalog.weights[(bidder * 12 + ad) * 6 + 5]));
    }
}

/// In a second-price auction bidding one's value is a dominant strategy,
/// so of all multipliers 1 earns the most in expectation, in every state.
#[test]
fn truthful_bidding_is_best_in_a_second_price_market() {
    let mut env = env(50, |c| c.participants = 3);
    env.reset(2);
    let truthful = 5; // multipliers 0.5, 0.6, …: index 5 is 1.0
    let mut expected = Vec::new();
    for _ in 0..20 {
        env.expected_rewards(&mut expected);
        for row in expected.chunks(11) {
            for &v in row {
                assert!(v <= row[truthful] + 1e-12, "{row:?}");
            }
        }
        env.step(&[3; 50]);
    }
}

/// The env's expectations against what happens: over `n` decisions at a
/// fixed multiplier, the mean of realised minus expected reward is 0 with
/// standard error `sd / √n`; 4 standard errors leave a false alarm rate of
/// 6·10⁻⁵. Three participants of six exercise the competitor-rank sum.
#[test]
fn expected_rewards_match_realised_rewards() {
    for mechanism in [Mechanism::SecondPrice, Mechanism::FirstPrice] {
        for action in [2, 5, 9] {
            let mut env = env(100, |c| {
                c.participants = 3;
                c.mechanism = mechanism;
            });
            env.reset(9);
            let mut expected = Vec::new();
            let mut diffs = Vec::new();
            for _ in 0..300 {
                env.expected_rewards(&mut expected);
                let step = env.step(&[action; 100]);
                for (s, r) in step.rewards.iter().enumerate() {
                    diffs.push(r - expected[s * 11 + action]);
                }
            }
            let n = diffs.len() as f64;
            let mean = diffs.iter().sum::<f64>() / n;
            let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            let z = mean / (sd / n.sqrt());
            assert!(z.abs() < 4.0, "{mechanism:?}, action {action}: z = {z:.2}");
        }
    }
}

/// The policy's advertiser takes part in a share `p = participants /
/// bidders` of auctions, so auctions per decision are geometric with mean
/// `1/p` and variance `(1 − p)/p²`; 4 standard errors again.
#[test]
fn a_decision_costs_bidders_over_participants_auctions() {
    let mut env = env(200, |_| {});
    env.reset(4);
    let (mut auctions, mut decisions) = (0.0, 0.0);
    for _ in 0..100 {
        let step = env.step(&[5; 200]);
        decisions += step.info[0];
        auctions += step.info[1];
    }
    let p: f64 = 2.0 / 6.0;
    let se = ((1.0 - p) / (p * p) / decisions).sqrt();
    let z = (auctions / decisions - 1.0 / p) / se;
    assert!(
        z.abs() < 4.0,
        "{} auctions per decision",
        auctions / decisions
    );
}

/// One market per call is the same market as slot 0 of a batch.
#[test]
fn one_market_per_call_is_slot_zero_of_a_batch() {
    let mut single = env(1, |_| {});
    let mut batch = env(3, |_| {});
    let (a, _) = single.reset(8);
    let (b, _) = batch.reset(8);
    assert_eq!(a[0], b[0]);
    for t in 0..500 {
        let action = t % 11;
        let x = single.step(&[action]);
        let y = batch.step(&[action, 0, 10]);
        assert_eq!(x.obs[0], y.obs[0], "tick {t}");
        assert_eq!(x.rewards[0], y.rewards[0]);
    }
}

#[test]
fn bad_configs_name_their_key() {
    let check = |edit: fn(&mut AuctionMarketConfig), key: &str| {
        let mut c = AuctionMarketConfig::sp_oracle(10, 10);
        edit(&mut c);
        let err = c.validate().expect_err("invalid");
        assert_eq!(err.key, key, "{err}");
    };
    check(|c| c.participants = 7, "participants");
    check(|c| c.bidders = 1, "bidders");
    check(|c| c.obs_embedding_size = 6, "obs_embedding_size");
    check(|c| c.bid_multipliers.clear(), "bid_multipliers");
    check(|c| c.bid_multipliers[3] = -1.0, "bid_multipliers[3]");
    check(|c| c.intercept_high = -5.0, "intercept_high");
    check(|c| c.value_log_sd = f64::INFINITY, "value_log_sd");
}
