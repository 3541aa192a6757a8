//! Scans of an item table for one shopper, the kernels behind
//! [`super::catalog::ItemTower`].
//!
//! The table is laid out in groups of [`GROUP`] items: for each column `c`,
//! the group's `GROUP` values side by side (zeros past the last item). A
//! scan keeps `GROUP` running sums and adds column after column,
//! `s ← fma(e_c, h_c, s)` for `c = 0, 1, …`, then the bias — one rounding
//! per column, in that order, for every item. There is no horizontal
//! reduction, so the sums are the same whatever the vector width: the code
//! is written once on plain arrays and compiled twice, with AVX2 and FMA
//! (dispatched at run time through `pulp` where the CPU has them: the
//! arrays become eight-lane registers) and without (each `mul_add` a
//! correctly rounded fused multiply-add, in hardware or in `libm`). Both
//! give the same bits; a unit test compares them.
//!
//! Values are stored either as `f32` or as 8-bit integers with one scale
//! per item (`e_c ≈ scale·q_c`, `q_c` in −127 ..= 127): a quarter of the
//! bytes, so a scan of a large catalog — bound by memory bandwidth, not
//! arithmetic — reads a quarter as much. An integer row's sum is taken over
//! `q_c·h_c` (each `q_c` exact in `f32`) and multiplied by the scale before
//! the bias is added.

/// Items per group of the table's layout: eight eight-lane registers of
/// running sums, enough independent chains to keep both FMA units busy.
pub(crate) const GROUP: usize = 64;

/// A stored table value, widened exactly to `f32` for the products.
pub(crate) trait Stored: Copy + Default {
    /// The value as an `f32`.
    fn widen(self) -> f32;
}

impl Stored for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Stored for i8 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from(self)
    }
}

/// Rows of `dim` finite values as 8-bit integers: per row the scale
/// `max_c |e_c| / 127` and `q_c = round(e_c / scale)` (0 for a row of
/// zeros). Returns the integers (row-major), the scales, and the largest
/// `|e_c − scale·q_c|` over every value, measured exactly in `f64` (about
/// half a scale; more where a scale is subnormal).
pub(crate) fn quantize(rows: &[f32], dim: usize) -> (Vec<i8>, Vec<f32>, f64) {
    let mut values = Vec::with_capacity(rows.len());
    let mut scales = Vec::with_capacity(rows.len() / dim);
    let mut error = 0.0f64;
    for row in rows.chunks_exact(dim) {
        let largest = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = largest / 127.0;
        for &x in row {
            let q = if scale > 0.0 {
                (x / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            };
            error = error.max((f64::from(x) - f64::from(scale) * f64::from(q)).abs());
            values.push(q);
        }
        scales.push(scale);
    }
    (values, scales, error)
}

/// `items × dim` row-major values in groups of [`GROUP`] items (see the
/// module's note), zeros past the last item.
pub(crate) fn grouped<T: Copy + Default>(rows: &[T], dim: usize) -> Vec<T> {
    let items = rows.len() / dim;
    let mut out = vec![T::default(); items.div_ceil(GROUP) * GROUP * dim];
    for (i, row) in rows.chunks_exact(dim).enumerate() {
        let group = (i / GROUP) * GROUP * dim;
        for (c, &x) in row.iter().enumerate() {
            out[group + c * GROUP + i % GROUP] = x;
        }
    }
    out
}

/// Runs `pass` compiled for AVX2 and FMA where the CPU has them, plainly
/// otherwise; the same arithmetic either way (module note). The hot loop
/// must sit in the pass's `#[inline(always)] call` (a struct's, not a
/// closure's: a closure's body is compiled apart, without the features).
#[inline(always)]
pub(crate) fn dispatch<P: pulp::NullaryFnOnce>(pass: P) -> P::Output {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return simd.vectorize(pass);
    }
    pass.call()
}

/// The scores `scale_i·(h·e_i) + b_i` of group `g`'s [`GROUP`] items (the
/// padding's included; without `scales`, `h·e_i + b_i`). `table` is
/// grouped, `scales` and `bias` padded to whole groups; `h.len()` is the
/// width.
#[inline(always)]
pub(crate) fn scan_group<T: Stored>(
    table: &[T],
    h: &[f32],
    scales: Option<&[f32]>,
    bias: &[f32],
    g: usize,
) -> [f32; GROUP] {
    let dim = h.len();
    let columns = &table[g * GROUP * dim..(g + 1) * GROUP * dim];
    let mut sums = [0.0f32; GROUP];
    for (column, &hc) in columns.chunks_exact(GROUP).zip(h) {
        let column: &[T; GROUP] = column.try_into().expect("a whole group");
        for (s, e) in sums.iter_mut().zip(column) {
            *s = e.widen().mul_add(hc, *s);
        }
    }
    let whole = |v: &[f32]| -> [f32; GROUP] {
        v[g * GROUP..(g + 1) * GROUP]
            .try_into()
            .expect("a whole group")
    };
    if let Some(scales) = scales {
        for (s, m) in sums.iter_mut().zip(whole(scales)) {
            *s *= m;
        }
    }
    for (s, b) in sums.iter_mut().zip(whole(bias)) {
        *s += b;
    }
    sums
}

/// Groups in a grouped table of width `dim`.
pub(crate) fn groups<T>(table: &[T], dim: usize) -> usize {
    table.len() / (dim * GROUP)
}

/// Item `i`'s score from a grouped table: the same operations, in the same
/// order, as its lane of [`scan_group`], so the same bits.
#[inline(always)]
pub(crate) fn score_one<T: Stored>(
    table: &[T],
    h: &[f32],
    scale: Option<f32>,
    bias: f32,
    i: usize,
) -> f32 {
    let dim = h.len();
    let start = (i / GROUP) * GROUP * dim + i % GROUP;
    let mut s = 0.0f32;
    for (c, &hc) in h.iter().enumerate() {
        s = table[start + c * GROUP].widen().mul_add(hc, s);
    }
    if let Some(scale) = scale {
        s *= scale;
    }
    s + bias
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use shoplab_env::seed::rng_from_seed;

    fn all<T: Stored>(table: &[T], h: &[f32], scales: Option<&[f32]>, bias: &[f32]) -> Vec<f32> {
        (0..groups(table, h.len()))
            .flat_map(|g| scan_group(table, h, scales, bias, g))
            .collect()
    }

    /// A pass for [`dispatch`]: both tables' every score.
    struct Both<'a> {
        exact: &'a [f32],
        coarse: &'a [i8],
        scales: &'a [f32],
        h: &'a [f32],
        bias: &'a [f32],
    }

    impl pulp::NullaryFnOnce for Both<'_> {
        type Output = (Vec<f32>, Vec<f32>, f32);
        #[inline(always)]
        fn call(self) -> Self::Output {
            (
                all(self.exact, self.h, None, self.bias),
                all(self.coarse, self.h, Some(self.scales), self.bias),
                score_one(
                    self.coarse,
                    self.h,
                    Some(self.scales[500]),
                    self.bias[500],
                    500,
                ),
            )
        }
    }

    #[test]
    fn the_dispatched_scan_gives_the_plain_scans_bits() {
        let (items, dim) = (1_000usize, 37);
        let mut rng = rng_from_seed(11);
        let rows: Vec<f32> = (0..items * dim)
            .map(|_| rng.random_range(-3.0..3.0))
            .collect();
        let h: Vec<f32> = (0..dim).map(|_| rng.random_range(-2.0..2.0)).collect();
        let padded = |mut v: Vec<f32>| {
            v.resize(items.div_ceil(GROUP) * GROUP, 0.0);
            v
        };
        let bias = padded((0..items).map(|_| rng.random_range(-1.0..1.0)).collect());
        let exact = grouped(&rows, dim);
        let (q, scales, _) = quantize(&rows, dim);
        let (coarse, scales) = (grouped(&q, dim), padded(scales));
        let pass = || Both {
            exact: &exact,
            coarse: &coarse,
            scales: &scales,
            h: &h,
            bias: &bias,
        };
        let plain = pulp::NullaryFnOnce::call(pass());
        let fast = dispatch(pass());
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&plain.0), bits(&fast.0));
        assert_eq!(bits(&plain.1), bits(&fast.1));
        assert_eq!(plain.2.to_bits(), plain.1[500].to_bits());
        assert_eq!(fast.2.to_bits(), plain.1[500].to_bits());
        for i in [0, 31, 32, 500, items - 1] {
            assert_eq!(
                score_one(&exact, &h, None, bias[i], i).to_bits(),
                plain.0[i].to_bits()
            );
            // Each lane is the sequential fused sum, column by column.
            let mut s = 0.0f32;
            for c in 0..dim {
                s = rows[i * dim + c].mul_add(h[c], s);
            }
            assert_eq!((s + bias[i]).to_bits(), plain.0[i].to_bits());
        }
        // The padding's lanes score their bias (zero) and nothing else.
        assert!(plain.0[items..].iter().all(|&s| s == 0.0));
        assert!(plain.1[items..].iter().all(|&s| s == 0.0));
    }

    #[test]
    fn quantizing_errs_by_at_most_half_a_scale() {
        let mut rng = rng_from_seed(12);
        let dim = 16;
        let mut rows: Vec<f32> = (0..200 * dim)
            .map(|_| rng.random_range(-5.0..5.0))
            .collect();
        rows[..dim].fill(0.0);
        let (q, scales, error) = quantize(&rows, dim);
        assert_eq!(scales[0], 0.0);
        assert!(q[..dim].iter().all(|&x| x == 0));
        let mut worst = 0.0f64;
        for (i, row) in rows.chunks_exact(dim).enumerate() {
            let scale = f64::from(scales[i]);
            let largest = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            // The largest value maps to ±127.
            assert!(
                q[i * dim..(i + 1) * dim]
                    .iter()
                    .any(|&x| x.unsigned_abs() == 127)
                    || largest == 0.0
            );
            for (c, &x) in row.iter().enumerate() {
                let e = (f64::from(x) - scale * f64::from(q[i * dim + c])).abs();
                assert!(e <= 0.5 * scale * (1.0 + 1e-5), "{x} {scale}");
                worst = worst.max(e);
            }
        }
        assert_eq!(error, worst);
        // A subnormal scale rounds badly; the measured error says so.
        let (_, scales, error) = quantize(&[1e-43, -3e-44], 2);
        assert!(scales[0] < f32::MIN_POSITIVE);
        assert!((0.0..=1e-43).contains(&error));
    }
}
