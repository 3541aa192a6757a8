//! The reward model's Newton systems, solved through their block structure.

use super::Layout;

/// A Newton (or normal-equations) system in the model's block structure:
/// `[[C, F₁ … Fₘ], [Fₐᵀ, Gₐ]]` with right-hand side `[g_c, gₐ]`.
pub(super) struct System {
    layout: Layout,
    pub(super) c: Vec<f64>,
    pub(super) f: Vec<f64>,
    pub(super) g: Vec<f64>,
    pub(super) rhs_c: Vec<f64>,
    pub(super) rhs_b: Vec<f64>,
}

impl System {
    pub(super) fn new(layout: Layout) -> Self {
        let (c, b, m) = (layout.core(), layout.block(), layout.m);
        Self {
            layout,
            c: vec![0.0; c * c],
            f: vec![0.0; m * c * b],
            g: vec![0.0; m * b * b],
            rhs_c: vec![0.0; c],
            rhs_b: vec![0.0; m * b],
        }
    }

    /// Adds a row: `h·φφᵀ` to the matrix and `t·φ` to the right-hand side,
    /// `φ` the shared features `shared` and action `a`'s `[1, x]`.
    pub(super) fn add(&mut self, shared: &[f64], a: usize, x: &[f64], h: f64, t: f64) {
        let (nc, nb) = (self.layout.core(), self.layout.block());
        let own = |j: usize| if j == 0 { 1.0 } else { x[j - 1] };
        for (i, &u) in shared.iter().enumerate() {
            if u == 0.0 {
                continue;
            }
            self.rhs_c[i] += t * u;
            for (j, &v) in shared.iter().enumerate() {
                self.c[i * nc + j] += h * u * v;
            }
            let f = &mut self.f[(a * nc + i) * nb..(a * nc + i + 1) * nb];
            for (j, fj) in f.iter_mut().enumerate() {
                *fj += h * u * own(j);
            }
        }
        let g = &mut self.g[a * nb * nb..(a + 1) * nb * nb];
        for i in 0..nb {
            let u = own(i);
            self.rhs_b[a * nb + i] += t * u;
            for j in 0..nb {
                g[i * nb + j] += h * u * own(j);
            }
        }
    }

    /// Adds `λ` to the diagonal (`λ₀` on the intercept's).
    pub(super) fn penalise(&mut self, lambda: f64, lambda0: f64) {
        let (nc, nb) = (self.layout.core(), self.layout.block());
        for i in 0..nc {
            self.c[i * nc + i] += if i == 0 { lambda0 } else { lambda };
        }
        for a in 0..self.layout.m {
            for i in 0..nb {
                self.g[a * nb * nb + i * nb + i] += lambda;
            }
        }
    }

    /// Solves the system by eliminating each action's block (its Cholesky
    /// factor) into the core's Schur complement.
    pub(super) fn solve(mut self) -> Vec<f64> {
        let (nc, nb, m) = (self.layout.core(), self.layout.block(), self.layout.m);
        let mut schur = self.c.clone();
        let mut rhs = self.rhs_c.clone();
        // Per action: Y = G⁻¹ Fᵀ (nb × nc) and y = G⁻¹ g_b.
        let mut ys = vec![0.0; m * nb * nc];
        let mut yb = vec![0.0; m * nb];
        let mut column = vec![0.0; nb];
        for a in 0..m {
            let g = &mut self.g[a * nb * nb..(a + 1) * nb * nb];
            cholesky(g, nb);
            let f = &self.f[a * nc * nb..(a + 1) * nc * nb];
            let y = &mut ys[a * nb * nc..(a + 1) * nb * nc];
            for i in 0..nc {
                column.copy_from_slice(&f[i * nb..(i + 1) * nb]);
                cholesky_solve(g, nb, &mut column);
                for (r, v) in column.iter().enumerate() {
                    y[r * nc + i] = *v;
                }
            }
            let own = &mut yb[a * nb..(a + 1) * nb];
            own.copy_from_slice(&self.rhs_b[a * nb..(a + 1) * nb]);
            cholesky_solve(g, nb, own);
            // schur −= F Y, rhs −= F y.
            for i in 0..nc {
                let fi = &f[i * nb..(i + 1) * nb];
                for j in 0..nc {
                    let dot: f64 = fi.iter().enumerate().map(|(r, v)| v * y[r * nc + j]).sum();
                    schur[i * nc + j] -= dot;
                }
                rhs[i] -= fi.iter().zip(own.iter()).map(|(u, v)| u * v).sum::<f64>();
            }
        }
        cholesky(&mut schur, nc);
        cholesky_solve(&schur, nc, &mut rhs);
        let mut out = rhs.clone();
        for a in 0..m {
            let y = &ys[a * nb * nc..(a + 1) * nb * nc];
            for r in 0..nb {
                let dot: f64 = (0..nc).map(|j| y[r * nc + j] * rhs[j]).sum();
                out.push(yb[a * nb + r] - dot);
            }
        }
        out
    }
}

/// In-place Cholesky factor `L` (lower triangle) of a symmetric positive
/// definite `n × n` matrix; the upper triangle is left as it was.
fn cholesky(h: &mut [f64], n: usize) {
    for j in 0..n {
        let mut diag = h[j * n + j];
        for k in 0..j {
            diag -= h[j * n + k] * h[j * n + k];
        }
        let l = diag.max(1e-300).sqrt();
        h[j * n + j] = l;
        for i in j + 1..n {
            let mut v = h[i * n + j];
            for k in 0..j {
                v -= h[i * n + k] * h[j * n + k];
            }
            h[i * n + j] = v / l;
        }
    }
}

/// Solves `L Lᵀ x = b` in place, `L` from [`cholesky`].
fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| l[i * n + k] * b[k]).sum();
        b[i] = (b[i] - dot) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| l[k * n + i] * b[k]).sum();
        b[i] = (b[i] - dot) / l[i * n + i];
    }
}
