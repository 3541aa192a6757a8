//! The interest-evolution family: `[interest_evolution]` tables, validated.

use super::{InterestEvolutionConfig, InterestEvolutionEnv, InterestEvolutionModel, METRICS};
use crate::config::ConfigError;
use shoplab_env::{
    EnvBox, Family, FamilyKind, Observation,
    cost::EpisodeCost,
    family::{ActionRule, Ratio, Sessions, calibration_episodes, metric_index},
};
use std::{path::Path, sync::Arc};

/// The `[interest_evolution]` family kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct InterestEvolutionFamily;

/// A validated interest-evolution scenario.
pub struct InterestEvolution {
    model: InterestEvolutionModel,
}

impl InterestEvolution {
    /// The validated model.
    pub fn model(&self) -> &InterestEvolutionModel {
        &self.model
    }
}

impl FamilyKind for InterestEvolutionFamily {
    type Config = InterestEvolutionConfig;

    fn name(&self) -> &'static str {
        "interest_evolution"
    }

    fn prepare(
        &self,
        config: &mut InterestEvolutionConfig,
        _: &Path,
    ) -> Result<Arc<dyn Family>, ConfigError> {
        Ok(Arc::new(InterestEvolution {
            model: config.validate()?,
        }))
    }
}

/// The summary ratios, the session length last.
const SESSION_LENGTH: usize = 3;

/// The rule that shows the candidates the user is most interested in, by
/// `interests · features` read from the observation (RecSim's myopic
/// ranking, without the hidden quality).
fn interest_rule(clusters: usize, candidates: usize) -> ActionRule {
    Arc::new(move |obs: &Observation, out: &mut Vec<usize>| {
        let f = &obs.features;
        let (interests, videos) = f[..clusters + candidates * clusters].split_at(clusters);
        let scores: Vec<f32> = videos
            .chunks_exact(clusters)
            .map(|row| interests.iter().zip(row).map(|(x, f)| x * f).sum())
            .collect();
        out.clear();
        out.extend(0..candidates);
        // Stable: ties keep the lower position first.
        out.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    })
}

impl Family for InterestEvolution {
    fn name(&self) -> &'static str {
        "interest_evolution"
    }

    /// Every tick steps every user: a fresh offer of `candidates` videos
    /// (a cluster draw and a normal draw each, and their one-hot features
    /// written twice: state and observation) and the slate's scores.
    fn episode_cost(&self) -> EpisodeCost {
        let c = self.model.config();
        let (n, k) = (f64::from(c.candidates), f64::from(c.clusters));
        let sessions = f64::from(c.concurrent_sessions);
        EpisodeCost {
            decisions: f64::from(c.ticks) * sessions,
            env_work: n * (2.0 * k + 20.0) + f64::from(c.slate_size) * k + 100.0,
            env_bytes: sessions * (n * (8.0 * k + 8.0) + 16.0 * k + 256.0) + 65_536.0,
            setup_bytes: 8.0 * k,
        }
    }

    fn make_env(&self) -> EnvBox {
        EnvBox::Batch(Box::new(InterestEvolutionEnv::new(self.model.clone())))
    }

    fn return_label(&self) -> &'static str {
        "minutes watched per session"
    }

    fn ratios(&self) -> Vec<Ratio> {
        let ratios = vec![
            Ratio::of(&METRICS, "ctr", "clicks", "steps"),
            Ratio::of(
                &METRICS,
                "watch_time_per_session",
                "watch_time",
                "sessions_ended",
            ),
            Ratio::of(&METRICS, "quality_per_click", "quality_watched", "clicks"),
            Ratio::of(&METRICS, "session_length", "steps", "sessions_ended"),
        ];
        debug_assert_eq!(ratios[SESSION_LENGTH].name, "session_length");
        ratios
    }

    fn sessions(&self) -> Option<Sessions> {
        Some(Sessions {
            ended_metric: metric_index(&METRICS, "sessions_ended"),
            length_ratio: SESSION_LENGTH,
            ticks: self.model.config().ticks,
        })
    }

    /// Offers are redrawn every step, so no fixed slate means anything:
    /// the simple policy is to show what the user is most interested in.
    fn baseline_candidates(&self, _: u64) -> Vec<(String, ActionRule)> {
        let c = self.model.config();
        vec![(
            "most interesting candidates (interests · features)".into(),
            interest_rule(c.clusters as usize, c.candidates as usize),
        )]
    }

    /// Enough episodes for 200,000 decisions, 2 to 20.
    fn calibration_episodes(&self) -> u32 {
        let c = self.model.config();
        calibration_episodes(c.ticks, c.concurrent_sessions)
    }

    fn interleaved_sessions(&self) -> bool {
        true
    }

    fn expected_rewards(&self) -> bool {
        true
    }
}
