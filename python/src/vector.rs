//! Many sessions stepped together from Python: `n` copies of a single env,
//! or a batched family's concurrent sessions, with the GIL released while
//! Rust steps them and the results copied once into NumPy arrays.
//!
//! Autoreset, as Gymnasium 1.x names its modes:
//! - copies of a single env use **next-step** autoreset (Gymnasium's
//!   default): the step after a copy's episode ends resets that copy,
//!   ignores its action, and returns its first observation with reward 0
//!   and neither flag set. Copy `i` is reset with `seed + i`, and its
//!   `k`-th autoreset with `derive_seed(seed + i, "autoreset", k)`.
//! - a batched family's sessions use **same-step** autoreset, as its
//!   simulator does: a session that ends is replaced at once, its slot
//!   returning the new session's first observation in the same step (a
//!   terminated session's last observation is not kept: nothing
//!   bootstraps from it). When the batch episode's ticks run out every
//!   slot is truncated and the batch is reset in the same step, the last
//!   observations given in `final_obs`.

use crate::{env::reset_needed, scenario::Scenario};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::{exceptions::PyValueError, prelude::*, types::PyDict};
use shoplab_env::{EnvBox, seed::derive_seed};
use std::sync::Mutex;

/// Most sessions one vector env may step.
const MAX_ENVS: usize = 1 << 20;

enum Envs {
    /// Copies of a single env, with their seeds, autoreset counts and
    /// whether each must reset at the next step.
    Copies {
        envs: Vec<Box<dyn shoplab_env::Env>>,
        seeds: Vec<u64>,
        resets: Vec<u64>,
        pending: Vec<bool>,
    },
    /// A batched env and its episodes so far.
    Batch {
        env: Box<dyn shoplab_env::batch::BatchEnv>,
        seed: u64,
        episodes: u64,
    },
}

struct Buffers {
    obs: Vec<f32>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    /// Copies: the episode references of the copies that ended this step.
    references: Vec<f64>,
    ended: Vec<bool>,
    /// Batch: the last observations before the batch episode's reset.
    final_obs: Option<Vec<f32>>,
    /// Each metric's value this step: per copy (`metrics[m][i]`, masked by
    /// `stepped`: a copy that reset this step has none), or, for a batch,
    /// the batch's total in `metrics[m][0]`.
    metrics: Vec<Vec<f64>>,
    stepped: Vec<bool>,
}

struct Inner {
    envs: Envs,
    buffers: Buffers,
    slates: Vec<usize>,
    started: bool,
    optimal: Option<f64>,
}

/// `n` sessions of a scenario stepped together.
#[pyclass(module = "shoplab._native")]
pub struct VectorEnv {
    inner: Mutex<Inner>,
    /// The env's metric names, in order.
    metric_names: Vec<&'static str>,
    n: usize,
    dim: usize,
    slate: usize,
    n_actions: usize,
    batched: bool,
}

fn write_obs(out: &mut [f32], features: &[f32]) {
    out.copy_from_slice(features);
}

/// Every slot's observation into `out`, slot by slot.
fn write_batch(out: &mut [f32], obs: &[shoplab_env::Observation], dim: usize) {
    for (i, o) in obs.iter().enumerate() {
        write_obs(&mut out[i * dim..(i + 1) * dim], &o.features);
    }
}

impl Inner {
    fn reset(&mut self, seed: u64, dim: usize) {
        self.started = true;
        let b = &mut self.buffers;
        b.rewards.fill(0.0);
        b.terminated.fill(false);
        b.truncated.fill(false);
        b.ended.fill(false);
        b.final_obs = None;
        match &mut self.envs {
            Envs::Copies {
                envs,
                seeds,
                resets,
                pending,
            } => {
                for (i, env) in envs.iter_mut().enumerate() {
                    seeds[i] = seed.wrapping_add(i as u64);
                    resets[i] = 0;
                    pending[i] = false;
                    let (obs, _) = env.reset(seeds[i]);
                    write_obs(&mut b.obs[i * dim..(i + 1) * dim], &obs.features);
                }
            }
            Envs::Batch {
                env,
                seed: s,
                episodes,
            } => {
                *s = seed;
                *episodes = 0;
                let (obs, _) = env.reset(seed);
                write_batch(&mut b.obs, &obs, dim);
            }
        }
    }

    fn step(&mut self, dim: usize) {
        let b = &mut self.buffers;
        b.final_obs = None;
        b.ended.fill(false);
        match &mut self.envs {
            Envs::Copies {
                envs,
                seeds,
                resets,
                pending,
            } => {
                for (i, env) in envs.iter_mut().enumerate() {
                    let out = &mut b.obs[i * dim..(i + 1) * dim];
                    if pending[i] {
                        resets[i] += 1;
                        let (obs, _) = env.reset(derive_seed(seeds[i], "autoreset", resets[i]));
                        write_obs(out, &obs.features);
                        b.rewards[i] = 0.0;
                        b.terminated[i] = false;
                        b.truncated[i] = false;
                        pending[i] = false;
                        b.stepped[i] = false;
                        continue;
                    }
                    let s = env.step(self.slates[i]);
                    write_obs(out, &s.obs.features);
                    b.stepped[i] = true;
                    for (column, value) in b.metrics.iter_mut().zip(&s.info) {
                        column[i] = *value;
                    }
                    b.rewards[i] = s.reward;
                    b.terminated[i] = s.terminated;
                    b.truncated[i] = s.truncated;
                    if s.done() {
                        pending[i] = true;
                        b.ended[i] = true;
                        b.references[i] =
                            env.episode_reference().or(self.optimal).unwrap_or(f64::NAN);
                    }
                }
            }
            Envs::Batch {
                env,
                seed,
                episodes,
            } => {
                let s = env.step(&self.slates);
                write_batch(&mut b.obs, &s.obs, dim);
                for (column, value) in b.metrics.iter_mut().zip(&s.info) {
                    column[0] = *value;
                }
                b.rewards.copy_from_slice(&s.rewards);
                b.terminated.copy_from_slice(&s.terminated);
                for (t, (&tr, &term)) in b
                    .truncated
                    .iter_mut()
                    .zip(s.truncated.iter().zip(&s.terminated))
                {
                    *t = (tr || s.episode_over) && !term;
                }
                if s.episode_over {
                    b.final_obs = Some(b.obs.clone());
                    *episodes += 1;
                    let (obs, _) = env.reset(derive_seed(*seed, "autoreset", *episodes));
                    write_batch(&mut b.obs, &obs, dim);
                }
            }
        }
    }
}

#[pymethods]
impl VectorEnv {
    /// `num_envs` copies of `scenario`'s single env, or — for a batched
    /// family, `num_envs` left out — its concurrent sessions.
    #[new]
    #[pyo3(signature = (scenario, num_envs = None))]
    fn new(scenario: &Scenario, num_envs: Option<usize>) -> PyResult<Self> {
        let prepared = &scenario.prepared;
        let first = prepared.make_env();
        let (envs, n, slate, n_actions, dim, batched) = match first {
            EnvBox::Batch(env) => {
                let n = env.batch_size();
                if let Some(m) = num_envs.filter(|&m| m != n) {
                    return Err(PyValueError::new_err(format!(
                        "scenario `{}` steps {n} concurrent sessions; num_envs = {m} would \
                         differ (override its concurrent sessions instead)",
                        prepared.scenario.name
                    )));
                }
                let (k, a, d) = (
                    env.slate_size(),
                    env.action_space().n(),
                    env.observation_space().len(),
                );
                (
                    Envs::Batch {
                        env,
                        seed: 0,
                        episodes: 0,
                    },
                    n,
                    k,
                    a,
                    d,
                    true,
                )
            }
            EnvBox::Single(env) => {
                let n = num_envs.unwrap_or(1);
                if !(1..=MAX_ENVS).contains(&n) {
                    return Err(PyValueError::new_err(format!(
                        "num_envs must be in 1 ..= {MAX_ENVS} (found {n})"
                    )));
                }
                let (a, d) = (env.action_space().n(), env.observation_space().len());
                let mut envs = vec![env];
                for _ in 1..n {
                    match prepared.make_env() {
                        EnvBox::Single(e) => envs.push(e),
                        EnvBox::Batch(_) => unreachable!("a family makes one kind of env"),
                    }
                }
                (
                    Envs::Copies {
                        envs,
                        seeds: vec![0; n],
                        resets: vec![0; n],
                        pending: vec![false; n],
                    },
                    n,
                    1,
                    a,
                    d,
                    false,
                )
            }
        };
        Ok(Self {
            inner: Mutex::new(Inner {
                envs,
                buffers: Buffers {
                    obs: vec![0.0; n * dim],
                    rewards: vec![0.0; n],
                    terminated: vec![false; n],
                    truncated: vec![false; n],
                    references: vec![f64::NAN; n],
                    ended: vec![false; n],
                    final_obs: None,
                    metrics: vec![vec![0.0; n]; prepared.metric_names().len()],
                    stepped: vec![false; n],
                },
                slates: vec![0; n * slate],
                started: false,
                optimal: prepared.optimal_value(),
            }),
            n,
            dim,
            slate,
            n_actions,
            batched,
            metric_names: prepared.metric_names().to_vec(),
        })
    }

    /// Number of sessions.
    #[getter]
    fn num_envs(&self) -> usize {
        self.n
    }

    /// Actions per session and step.
    #[getter]
    fn slate_size(&self) -> usize {
        self.slate
    }

    /// `"same_step"` for a batched family, `"next_step"` for copies.
    #[getter]
    fn autoreset_mode(&self) -> &'static str {
        if self.batched {
            "same_step"
        } else {
            "next_step"
        }
    }

    /// Resets every session from `seed`: the observations, `(n, dim)`.
    fn reset<'py>(&self, py: Python<'py>, seed: u64) -> Bound<'py, PyArray2<f32>> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *guard;
        let dim = self.dim;
        py.detach(|| inner.reset(seed, dim));
        matrix(py, &inner.buffers.obs, self.n, dim)
    }

    /// Steps every session with `actions` (`(n,)` ints, or `(n, slate)`):
    /// `(observations, rewards, terminations, truncations, infos)`;
    /// `infos` holds `reference` (with its `_reference` mask) for copies
    /// whose episode ended, `final_obs` (with `_final_obs`) when a batch
    /// episode ends, and the env's metrics: one array each for copies
    /// (masked by `_<name>` where a copy reset instead of stepping), or a
    /// batch's totals over its sessions in `batch_metrics`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        actions: &Bound<'py, PyAny>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<bool>>,
        Bound<'py, PyArray1<bool>>,
        Bound<'py, PyDict>,
    )> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *guard;
        if !inner.started {
            return Err(reset_needed(py, "step() before the first reset()"));
        }
        let shape_rule = || {
            PyValueError::new_err(format!(
                "actions are an array of shape ({}{}) of ints",
                self.n,
                if self.slate > 1 {
                    format!(", {}", self.slate)
                } else {
                    ",".to_string()
                }
            ))
        };
        let given = actions
            .extract::<numpy::PyArrayLikeDyn<'py, i64, numpy::AllowTypeChange>>()
            .map_err(|_| shape_rule())?;
        let shape = given.shape().to_vec();
        let fits = match shape.as_slice() {
            [n] => *n == self.n && self.slate == 1,
            [n, k] => *n == self.n && *k == self.slate,
            _ => false,
        };
        if !fits {
            return Err(shape_rule());
        }
        let array: Vec<i64> = given.as_array().iter().copied().collect();
        let n_actions = self.n_actions as i64;
        if let Some(a) = array.iter().find(|&&a| a < 0 || a >= n_actions) {
            return Err(PyValueError::new_err(format!(
                "action {a} is outside the action space (0 ..= {})",
                n_actions - 1
            )));
        }
        if self.slate > 1 {
            for slate in array.chunks(self.slate) {
                if let Some((_, a)) = slate
                    .iter()
                    .enumerate()
                    .find(|(i, a)| slate[..*i].contains(a))
                {
                    return Err(PyValueError::new_err(format!(
                        "a slate's actions are distinct (action {a} is there twice)"
                    )));
                }
            }
        }
        inner.slates.clear();
        inner.slates.extend(array.iter().map(|&a| a as usize));
        let dim = self.dim;
        py.detach(|| inner.step(dim));
        let b = &inner.buffers;
        let infos = PyDict::new(py);
        if b.ended.iter().any(|&e| e) {
            infos.set_item("reference", PyArray1::from_slice(py, &b.references))?;
            infos.set_item("_reference", PyArray1::from_slice(py, &b.ended))?;
        }
        if let Some(f) = &b.final_obs {
            infos.set_item("final_obs", matrix(py, f, self.n, dim))?;
            infos.set_item("_final_obs", PyArray1::from_vec(py, vec![true; self.n]))?;
        }
        // The env's named metrics: per copy, masked where a copy reset
        // instead of stepping; for a batch, its totals over the sessions.
        if self.batched {
            let totals = PyDict::new(py);
            for (name, column) in self.metric_names.iter().zip(&b.metrics) {
                totals.set_item(*name, column[0])?;
            }
            infos.set_item("batch_metrics", totals)?;
        } else {
            for (name, column) in self.metric_names.iter().zip(&b.metrics) {
                infos.set_item(*name, PyArray1::from_slice(py, column))?;
                infos.set_item(format!("_{name}"), PyArray1::from_slice(py, &b.stepped))?;
            }
        }
        Ok((
            matrix(py, &b.obs, self.n, dim),
            PyArray1::from_slice(py, &b.rewards),
            PyArray1::from_slice(py, &b.terminated),
            PyArray1::from_slice(py, &b.truncated),
            infos,
        ))
    }
}

/// An `(n, dim)` array copied from `values`.
fn matrix<'py>(py: Python<'py>, values: &[f32], n: usize, dim: usize) -> Bound<'py, PyArray2<f32>> {
    PyArray1::from_slice(py, values)
        .reshape([n, dim])
        .expect("n × dim values")
}
