//! The estimators' and FQE's command-line settings, shared by
//! `shoplab ope` and `shoplab ope-study`, checked before any work.

use anyhow::{Result, bail};
use shoplab_logs::{
    model::ModelKind,
    ope::{Estimator, Sequential},
};

/// The estimators' settings, shared by `ope` and `ope-study`.
#[derive(clap::Args)]
pub(crate) struct EstimatorArgs {
    /// Estimators, comma-separated: dm, ipw, snipw, dr, sndr, switch-dr,
    /// dr-os (per decision), pdis, wpdis, fqe, dr-mdp (per session)
    /// [default: the seven per-decision ones].
    #[arg(long, value_delimiter = ',')]
    pub estimators: Vec<String>,
    /// Largest importance weight of IPW and DR (obp's `lambda_`).
    #[arg(long, default_value_t = f64::INFINITY)]
    pub clip: f64,
    /// Switch-DR's threshold on the weight.
    #[arg(long, default_value_t = f64::INFINITY)]
    pub tau: f64,
    /// DR-OS's shrinkage λ (0 gives DM, inf gives DR).
    #[arg(long, default_value_t = 0.0)]
    pub shrinkage: f64,
    /// Discount of the per-session estimators and the session truth.
    #[arg(long, default_value_t = 1.0)]
    pub gamma: f64,
    /// The reward model of DM and the DR family when no estimated rewards
    /// are given: logistic (rewards in [0, 1]), ridge, or auto (logistic
    /// when every reward is in [0, 1]).
    #[arg(long, default_value = "auto")]
    pub reward_model: String,
    /// The reward model's L2 penalty λ (on the sum of losses).
    #[arg(long, default_value_t = 1.0)]
    pub l2: f64,
    /// Cross-fit the reward model over this many groups of sessions (1:
    /// fit on the whole log, as obp's default).
    #[arg(long, default_value_t = 1)]
    pub folds: usize,
    /// Seed of the bootstrap (and, in a study, of everything).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The estimators and the reward model, checked.
pub(crate) struct Estimators {
    pub bandit: Vec<Estimator>,
    pub sequential: Vec<Sequential>,
    /// Fitted Q evaluation asked.
    pub fqe: bool,
    /// The doubly robust estimator for MDPs asked (on FQE's model).
    pub dr_mdp: bool,
    pub model: (Option<ModelKind>, f64, usize),
}

impl EstimatorArgs {
    /// Checks every setting and names the estimators.
    pub(crate) fn parse(&self) -> Result<Estimators> {
        for (flag, v) in [
            ("--clip", self.clip),
            ("--tau", self.tau),
            ("--shrinkage", self.shrinkage),
        ] {
            if v.is_nan() || v < 0.0 {
                bail!("{flag} must be a number ≥ 0 or inf (found {v})");
            }
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            bail!("--gamma must be in [0, 1] (found {})", self.gamma);
        }
        if !(self.l2.is_finite() && self.l2 > 0.0) {
            bail!("--l2 must be a positive number (found {})", self.l2);
        }
        if self.folds == 0 {
            bail!("--folds must be at least 1");
        }
        let kind = match self.reward_model.as_str() {
            "auto" => None,
            "logistic" => Some(ModelKind::Logistic),
            "ridge" => Some(ModelKind::Ridge),
            other => bail!("--reward-model: unknown model `{other}` (auto, logistic, ridge)"),
        };
        let mut bandit = Vec::new();
        let mut sequential = Vec::new();
        let mut model_based = (false, false);
        for name in &self.estimators {
            match name.as_str() {
                "fqe" => model_based.0 = true,
                "dr-mdp" => model_based.1 = true,
                "pdis" => sequential.push(Sequential::Pdis),
                "wpdis" => sequential.push(Sequential::Wpdis),
                "dm" => bandit.push(Estimator::Dm),
                "ipw" => bandit.push(Estimator::Ipw { lambda: self.clip }),
                "snipw" => bandit.push(Estimator::Snipw),
                "dr" => bandit.push(Estimator::Dr { lambda: self.clip }),
                "sndr" => bandit.push(Estimator::Sndr),
                "switch-dr" => bandit.push(Estimator::SwitchDr { tau: self.tau }),
                "dr-os" => bandit.push(Estimator::DrOs {
                    lambda: self.shrinkage,
                }),
                other => bail!(
                    "--estimators: unknown estimator `{other}` (dm, ipw, snipw, dr, sndr, switch-dr, dr-os, pdis, wpdis, fqe, dr-mdp)"
                ),
            }
        }
        if bandit.is_empty() && sequential.is_empty() && !model_based.0 && !model_based.1 {
            bandit = vec![
                Estimator::Ipw { lambda: self.clip },
                Estimator::Snipw,
                Estimator::Dm,
                Estimator::Dr { lambda: self.clip },
                Estimator::Sndr,
                Estimator::SwitchDr { tau: self.tau },
                Estimator::DrOs {
                    lambda: self.shrinkage,
                },
            ];
        }
        Ok(Estimators {
            bandit,
            sequential,
            fqe: model_based.0,
            dr_mdp: model_based.1,
            model: (kind, self.l2, self.folds),
        })
    }
}

/// How fitted Q evaluation (fqe, and dr-mdp's model) fits.
#[derive(clap::Args)]
pub(crate) struct FqeArgs {
    /// FQE's Q-network hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,64")]
    pub fqe_hidden: Vec<usize>,
    /// FQE's iterations (0: the longest session's length).
    #[arg(long, default_value_t = 0)]
    pub fqe_iterations: usize,
    /// Passes over the log per FQE iteration.
    #[arg(long, default_value_t = 8.0)]
    pub fqe_epochs: f64,
    /// Bootstrap refits of FQE for its interval (each a full fit).
    #[arg(long, default_value_t = 20)]
    pub fqe_bootstrap: usize,
}

impl FqeArgs {
    pub(crate) fn config(&self, seed: u64) -> Result<shoplab_logs::fqe::FqeConfig> {
        if self.fqe_hidden.is_empty()
            || self.fqe_hidden.iter().any(|&w| !(1..=1024).contains(&w))
            || self.fqe_hidden.len() > 8
        {
            bail!(
                "--fqe-hidden must be 1 to 8 widths of 1 ..= 1024 (found {:?})",
                self.fqe_hidden
            );
        }
        if !(self.fqe_epochs.is_finite() && self.fqe_epochs > 0.0 && self.fqe_epochs <= 1000.0) {
            bail!(
                "--fqe-epochs must be in (0, 1000] (found {})",
                self.fqe_epochs
            );
        }
        if self.fqe_iterations > 100_000 || !(2..=1000).contains(&self.fqe_bootstrap) {
            bail!("--fqe-iterations must be at most 100000 and --fqe-bootstrap between 2 and 1000");
        }
        Ok(shoplab_logs::fqe::FqeConfig {
            hidden: self.fqe_hidden.clone(),
            iterations: self.fqe_iterations,
            epochs: self.fqe_epochs,
            seed,
            ..Default::default()
        })
    }
}
