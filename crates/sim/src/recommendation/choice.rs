//! The choice model: a multinomial logit over the slate and a no-click option.

/// Softmax choice probabilities of a slate with utilities `utilities` against
/// a no-click option of utility `no_click`, at temperature `temperature`:
/// `out[i] = e^{U_i/τ} / (e^{u_0/τ} + Σ_j e^{U_j/τ})`, computed stably
/// (shifted by the largest utility). Returns the no-click probability.
pub fn choice_probabilities(
    utilities: &[f32],
    no_click: f32,
    temperature: f32,
    out: &mut Vec<f32>,
) -> f32 {
    let top = utilities.iter().copied().fold(no_click, f32::max);
    out.clear();
    out.extend(utilities.iter().map(|u| ((u - top) / temperature).exp()));
    let none = ((no_click - top) / temperature).exp();
    let total = none + out.iter().sum::<f32>();
    out.iter_mut().for_each(|p| *p /= total);
    none / total
}
