//! The ads family: `[ads]` tables, validated; each day's hindsight optimum
//! is the reference (the env reports it).

use super::{AdsConfig, AdsEnv, AdsModel, AdsObservation, METRICS};
use crate::{config::ConfigError, table_grid};
use shoplab_env::{
    EnvBox, Family, FamilyKind, Observation,
    cost::EpisodeCost,
    family::{ActionRule, BidGrid, GreedyTable, Ratio, constant_rule},
};
use std::{
    any::{Any, TypeId},
    path::Path,
    sync::Arc,
};

/// The `[ads]` family kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdsFamily;

/// A validated ads scenario. Its setup: the [`BidGrid`] paced bidders act on.
pub struct Ads {
    model: AdsModel,
    bids: BidGrid,
}

impl Ads {
    /// The validated model.
    pub fn model(&self) -> &AdsModel {
        &self.model
    }
}

impl FamilyKind for AdsFamily {
    type Config = AdsConfig;

    fn name(&self) -> &'static str {
        "ads"
    }

    fn prepare(&self, config: &mut AdsConfig, _: &Path) -> Result<Arc<dyn Family>, ConfigError> {
        let model = config.validate()?;
        Ok(Arc::new(Ads {
            bids: BidGrid {
                bid_multipliers: config.bid_multipliers.clone(),
                n_creatives: config.n_creatives as usize,
                periods: config.periods,
            },
            model,
        }))
    }
}

impl Family for Ads {
    fn name(&self) -> &'static str {
        "ads"
    }

    /// One decision per period; each period runs its auctions (the
    /// busiest day's expected opportunities, with six standard deviations
    /// of headroom), and the env logs the day's opportunities for its
    /// hindsight optimum, which sorts a copy of them.
    fn episode_cost(&self) -> EpisodeCost {
        let config = self.model.config();
        let traffic = config
            .day_variation
            .as_ref()
            .map_or(0.0, |d| d.traffic.exp());
        let day: f64 = (0..config.periods)
            .map(|t| config.opportunities.rate(t, config.periods))
            .sum::<f64>()
            * traffic.max(1.0);
        let day = day + 6.0 * day.sqrt() + 1.0;
        let periods = f64::from(config.periods);
        let log = 3.0 * 48.0 * day;
        EpisodeCost {
            decisions: periods,
            env_work: (40.0 + 4.0 * f64::from(config.n_creatives)) * day / periods
                + 20.0 * day.log2().max(1.0) * day / periods
                + 100.0,
            env_bytes: log + 65_536.0,
            setup_bytes: 1024.0 * config.segments.len() as f64,
        }
    }

    fn make_env(&self) -> EnvBox {
        EnvBox::Single(Box::new(AdsEnv::new(self.model.clone())))
    }

    fn return_label(&self) -> &'static str {
        match self.model.config().reward {
            crate::ads::AdsReward::Value => "conversion value won per day",
            crate::ads::AdsReward::Clicks => "clicks won per day",
        }
    }

    fn ratios(&self) -> Vec<Ratio> {
        vec![
            Ratio::of(&METRICS, "win_rate", "wins", "opportunities"),
            Ratio::of(&METRICS, "cost_per_click", "spend", "clicks"),
            Ratio::of(
                &METRICS,
                "best_creative_share",
                "best_creative_impressions",
                "wins",
            ),
        ]
    }

    /// One fixed multiplier all day, each of the grid's, showing the
    /// creative with the best expected reward over the segment mix.
    fn baseline_candidates(&self, _: u64) -> Vec<(String, ActionRule)> {
        let c = self.model.config();
        let n = c.n_creatives as usize;
        let creative = self.model.best_creative_overall();
        c.bid_multipliers
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let rule = constant_rule(i * n + creative);
                (format!("best fixed λ = {m} (creative {creative})"), rule)
            })
            .collect()
    }

    fn score_metric(&self) -> Option<usize> {
        Some(shoplab_env::family::metric_index(
            &METRICS,
            "expected_reward",
        ))
    }

    /// The greedy bid multiplier by period and pace (budget share left minus
    /// day share left), the rest of the state at its start-of-period zero.
    fn greedy_table(&self, greedy: &dyn Fn(&Observation) -> usize) -> Option<GreedyTable> {
        let c = self.model.config();
        let (budget, periods) = (c.budget, f64::from(c.periods));
        let rows = table_grid(c.periods - 1);
        let cols: Vec<f64> = (-10..=10).map(|i| f64::from(i) / 20.0).collect();
        let n_creatives = c.n_creatives as usize;
        let values = rows
            .iter()
            .map(|&period| {
                cols.iter()
                    .map(|&pace| {
                        let t = f64::from(period);
                        let left = ((pace + (periods - t) / periods) * budget).clamp(0.0, budget);
                        let obs = AdsObservation {
                            period,
                            budget_left: left,
                            spend: budget - left,
                            pace,
                            ..AdsObservation::default()
                        };
                        c.bid_multipliers[greedy(&obs.observation()) / n_creatives]
                    })
                    .collect()
            })
            .collect();
        Some(GreedyTable {
            row_name: "period".into(),
            col_name: "pace".into(),
            value_name: "bid multiplier".into(),
            rows: rows.into_iter().map(f64::from).collect(),
            cols,
            values,
            visited: None,
        })
    }

    fn setup(&self, type_id: TypeId) -> Option<&dyn Any> {
        (type_id == TypeId::of::<BidGrid>()).then_some(&self.bids as &dyn Any)
    }
}
