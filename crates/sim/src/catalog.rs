//! The item catalog of the recommendation scenarios: feature vectors, topics,
//! prices, quality and clickbait appeal.
//!
//! A catalog is generated from the seed or read from a CSV file. Generated
//! items cluster around `n_topics` random topic directions: item `i` of topic
//! `k` has features `normalise(c_k + ε)`, `ε ~ N(0, topic_spread²)` per
//! dimension, a lognormal price, a normal quality score, and — for a
//! `clickbait_share` of the items — a clickbait appeal that attracts clicks
//! without satisfying.

use crate::config::{ConfigError, MAX_MAGNITUDE, probability, within};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use shoplab_env::seed::SimRng;
use std::path::Path;

/// Most items in a catalog, generated or read, and the bound of topic
/// numbers (topics are numbered `0..MAX_ITEMS`).
pub const MAX_ITEMS: usize = 100_000;

/// Largest feature dimension.
pub const MAX_DIM: u32 = 256;

/// One item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Unit-length feature vector (`dim` values).
    pub features: Vec<f32>,
    /// Topic index, `0..n_topics`.
    pub topic: u32,
    /// Price, > 0.
    pub price: f32,
    /// Quality: utility every shopper gets from the item.
    pub quality: f32,
    /// Clickbait appeal: utility added to the click decision only, ≥ 0.
    pub clickbait: f32,
}

/// The items, with their dimension and topic count.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// Feature dimension.
    pub dim: usize,
    /// Number of topics.
    pub n_topics: usize,
    /// Topic centres, unit vectors (`n_topics × dim`).
    pub topic_centres: Vec<Vec<f32>>,
    /// The items.
    pub items: Vec<Item>,
}

/// A catalog table: where the items come from — generated from `seed`, or
/// read from the CSV file at `path` — and how generated ones look. One
/// flat table (no flattened parts), so an unknown key is refused with the
/// list of known ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Seed of a generated catalog: the same seed, the same items in every run.
    pub seed: u64,
    /// A CSV file of items instead of a generated catalog (relative to the
    /// scenario file); see [`Catalog::from_csv`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<std::path::PathBuf>,
    /// Standard deviation of an item's features around its topic centre, ≥ 0.
    pub topic_spread: f64,
    /// Mean of log price.
    pub price_log_mean: f64,
    /// Standard deviation of log price, ≥ 0.
    pub price_log_sd: f64,
    /// Standard deviation of item quality (mean 0), ≥ 0.
    pub quality_sd: f64,
    /// Share of items that are clickbait, in `[0, 1]`.
    pub clickbait_share: f64,
    /// Click utility a clickbait item adds, ≥ 0.
    pub clickbait_appeal: f64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            path: None,
            topic_spread: 0.3,
            price_log_mean: 0.0,
            price_log_sd: 0.5,
            quality_sd: 0.3,
            clickbait_share: 0.0,
            clickbait_appeal: 0.0,
        }
    }
}

impl CatalogConfig {
    /// Checks the generation parameters (keys relative to the catalog table).
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Prices are e^(mean + sd·z): within these bounds they stay far
        // inside f32, and utilities within the choice model's range.
        within("topic_spread", self.topic_spread, 0.0, 1e3)?;
        within("price_log_mean", self.price_log_mean, -20.0, 20.0)?;
        within("price_log_sd", self.price_log_sd, 0.0, 3.0)?;
        within("quality_sd", self.quality_sd, 0.0, 1e3)?;
        probability("clickbait_share", self.clickbait_share)?;
        within("clickbait_appeal", self.clickbait_appeal, 0.0, 1e3)
    }
}

fn normal<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    let z: f64 = StandardNormal.sample(rng);
    z as f32
}

/// Scales `v` to unit length (a zero vector becomes the first basis vector).
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else if let Some(first) = v.first_mut() {
        *first = 1.0;
    }
}

/// A random unit vector in `dim` dimensions.
pub fn random_direction<R: Rng + ?Sized>(dim: usize, rng: &mut R) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| normal(rng)).collect();
    normalise(&mut v);
    v
}

/// `normalise(centre + N(0, spread²))`.
pub fn near<R: Rng + ?Sized>(centre: &[f32], spread: f64, rng: &mut R) -> Vec<f32> {
    let mut v: Vec<f32> = centre
        .iter()
        .map(|c| c + spread as f32 * normal(rng))
        .collect();
    normalise(&mut v);
    v
}

impl Catalog {
    /// Generates `n_items` items in `n_topics` topics (items are spread over
    /// topics in turn: item `i` has topic `i mod n_topics`).
    pub fn generate(
        n_items: usize,
        dim: usize,
        n_topics: usize,
        params: &CatalogConfig,
        rng: &mut SimRng,
    ) -> Self {
        let topic_centres: Vec<Vec<f32>> =
            (0..n_topics).map(|_| random_direction(dim, rng)).collect();
        let n_clickbait = (params.clickbait_share * n_items as f64).round() as usize;
        let items = (0..n_items)
            .map(|i| {
                let topic = i % n_topics;
                let features = near(&topic_centres[topic], params.topic_spread, rng);
                let price =
                    (params.price_log_mean + params.price_log_sd * f64::from(normal(rng))).exp();
                let quality = params.quality_sd * f64::from(normal(rng));
                // The clickbait items are spread evenly over the catalog.
                let clickbait = n_clickbait > 0 && (i * n_clickbait) % n_items < n_clickbait;
                Item {
                    features,
                    topic: topic as u32,
                    price: price as f32,
                    quality: quality as f32,
                    clickbait: if clickbait {
                        params.clickbait_appeal as f32
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        Self {
            dim,
            n_topics,
            topic_centres,
            items,
        }
    }

    /// Reads items from a CSV file with a header row and the columns `topic`,
    /// `price`, `quality`, `clickbait` and `f0 … f{dim−1}` (any order, other
    /// columns ignored). Features are normalised to unit length; topic
    /// centres are the normalised mean features of each topic's items.
    pub fn from_csv(path: &Path, dim: usize) -> Result<Self, ConfigError> {
        let key = "catalog.path";
        let fail = |rule: String| ConfigError::new(key, format!("{}: {rule}", path.display()));
        let bytes = shoplab_env::input::read_regular_file(path, shoplab_env::input::MAX_DATA_BYTES)
            .map_err(|e| fail(e.to_string()))?;
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(bytes.as_slice());
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| fail(format!("cannot read the header: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        if columns.iter().all(String::is_empty) {
            return Err(fail("the file is empty".into()));
        }
        let find = |name: &str| {
            columns
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| fail(format!("missing column `{name}` in the header")))
        };
        let topic_col = find("topic")?;
        let price_col = find("price")?;
        let quality_col = find("quality")?;
        let clickbait_col = find("clickbait")?;
        let feature_cols = (0..dim)
            .map(|j| find(&format!("f{j}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut items = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| fail(format!("cannot read: {e}")))?;
            let row = record.position().map_or(0, |p| p.line());
            if items.len() == MAX_ITEMS {
                return Err(fail(format!(
                    "row {row}: more than {MAX_ITEMS} items, the limit of a catalog"
                )));
            }
            let cells: Vec<&str> = record.iter().collect();
            if cells.len() != columns.len() {
                return Err(fail(format!(
                    "row {row}: {} cells, the header has {}",
                    cells.len(),
                    columns.len()
                )));
            }
            // Every number within [low, high]: prices in money, quality and
            // clickbait as utilities (the choice model's range), features
            // anything that stays finite once squared in f32.
            let number = |col: usize, low: f64, high: f64| -> Result<f64, ConfigError> {
                cells[col]
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (low..=high).contains(v))
                    .ok_or_else(|| {
                        fail(format!(
                            "row {row}, column `{}`: expected a number in [{low}, {high}], found {:?}",
                            columns[col], cells[col]
                        ))
                    })
            };
            let topic = cells[topic_col]
                .parse::<u32>()
                .ok()
                .filter(|&t| (t as usize) < MAX_ITEMS)
                .ok_or_else(|| {
                    fail(format!(
                        "row {row}, column `topic`: expected a whole number from 0 to {}, found {:?}",
                        MAX_ITEMS - 1,
                        cells[topic_col]
                    ))
                })?;
            let price = number(price_col, f64::MIN_POSITIVE, MAX_MAGNITUDE)?;
            let clickbait = number(clickbait_col, 0.0, 1e3)?;
            let quality = number(quality_col, -1e3, 1e3)?;
            let mut features = feature_cols
                .iter()
                .map(|&c| number(c, -1e9, 1e9).map(|v| v as f32))
                .collect::<Result<Vec<_>, _>>()?;
            normalise(&mut features);
            items.push(Item {
                features,
                topic,
                price: price as f32,
                quality: quality as f32,
                clickbait: clickbait as f32,
            });
        }
        if items.is_empty() {
            return Err(fail("no item rows after the header".into()));
        }
        let n_topics = items
            .iter()
            .map(|i| i.topic as usize + 1)
            .max()
            .unwrap_or(1);
        let topic_centres = (0..n_topics)
            .map(|k| {
                let mut centre = vec![0.0; dim];
                for item in items.iter().filter(|i| i.topic as usize == k) {
                    centre
                        .iter_mut()
                        .zip(&item.features)
                        .for_each(|(c, x)| *c += x);
                }
                normalise(&mut centre);
                centre
            })
            .collect();
        Ok(Self {
            dim,
            n_topics,
            topic_centres,
            items,
        })
    }
}

/// Checks a catalog size: `n_items ≥ 1`, `dim ≥ 1`, and the topic count.
pub fn validate_sizes(n_items: u32, dim: u32, n_topics: u32) -> Result<(), ConfigError> {
    crate::config::in_range("n_items", n_items.into(), 1, MAX_ITEMS as u64)?;
    crate::config::in_range("dim", dim.into(), 1, MAX_DIM.into())?;
    crate::config::in_range("n_topics", n_topics.into(), 1, n_items.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoplab_env::seed::rng_from_seed;

    #[test]
    fn generated_items_are_unit_vectors_near_their_topic() {
        let params = CatalogConfig {
            clickbait_share: 0.2,
            clickbait_appeal: 2.0,
            ..CatalogConfig::default()
        };
        let c = Catalog::generate(50, 8, 5, &params, &mut rng_from_seed(1));
        assert_eq!(c.items.len(), 50);
        assert_eq!(c.items.iter().filter(|i| i.clickbait > 0.0).count(), 10);
        let mut total_cos = 0.0;
        for item in &c.items {
            let norm: f32 = item.features.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-5);
            let centre = &c.topic_centres[item.topic as usize];
            total_cos += centre
                .iter()
                .zip(&item.features)
                .map(|(a, b)| a * b)
                .sum::<f32>();
        }
        // Noise of sd 0.3 in 8 dimensions has norm ≈ 0.85, so the expected
        // cosine to the centre is about 1/√(1 + 0.72) ≈ 0.76.
        let mean_cos = total_cos / 50.0;
        assert!(mean_cos > 0.6, "items far from their topics: {mean_cos}");
    }

    #[test]
    fn csv_errors_name_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("items.csv");
        std::fs::write(
            &file,
            "topic,price,quality,clickbait,f0,f1\n0,1.5,0.1,0,1,0\n1,2.0,x,0,0,1\n",
        )
        .unwrap();
        let e = Catalog::from_csv(&file, 2).unwrap_err();
        assert!(e.rule.contains("row 3, column `quality`"), "{e}");
        // Numbers that would be infinite as f32 prices or features.
        for row in [
            "0,1e300,0.1,0,1,0",
            "0,1.5,0.1,0,1e300,0",
            "0,1.5,1e308,0,1,0",
        ] {
            std::fs::write(
                &file,
                format!("topic,price,quality,clickbait,f0,f1\n{row}\n"),
            )
            .unwrap();
            let e = Catalog::from_csv(&file, 2).unwrap_err();
            assert!(e.rule.contains("row 2, column"), "{e}");
        }
        std::fs::write(&file, "topic,price,quality,clickbait,f0\n0,1.5,0.1,0,1\n").unwrap();
        let e = Catalog::from_csv(&file, 2).unwrap_err();
        assert!(e.rule.contains("missing column `f1`"), "{e}");
        std::fs::write(
            &file,
            "topic,price,quality,clickbait,f0,f1\n0,1.5,0.1,0,3,4\n",
        )
        .unwrap();
        let c = Catalog::from_csv(&file, 2).unwrap();
        assert_eq!(c.items[0].features, vec![0.6, 0.8]);
        // Quoted fields and extra columns, as spreadsheets write them.
        std::fs::write(
            &file,
            "name,topic,price,quality,clickbait,f0,f1\n\"Lamp, brass\",2,\"1.5\",0.1,0,0,2\n",
        )
        .unwrap();
        let c = Catalog::from_csv(&file, 2).unwrap();
        assert_eq!((c.items[0].topic, c.items[0].price), (2, 1.5));
        // Topic numbers beyond the item limit would size per-topic tables.
        std::fs::write(
            &file,
            "topic,price,quality,clickbait,f0,f1\n4294967295,1.5,0.1,0,3,4\n",
        )
        .unwrap();
        let e = Catalog::from_csv(&file, 2).unwrap_err();
        assert!(
            e.rule
                .contains("row 2, column `topic`: expected a whole number from 0 to 99999"),
            "{e}"
        );
        // More rows than a catalog may hold.
        let mut text = String::from("topic,price,quality,clickbait,f0,f1\n");
        for _ in 0..=MAX_ITEMS {
            text.push_str("0,1,0,0,1,0\n");
        }
        std::fs::write(&file, text).unwrap();
        let e = Catalog::from_csv(&file, 2).unwrap_err();
        assert!(e.rule.contains("more than 100000 items"), "{e}");
        assert_eq!(c.items[0].features, vec![0.0, 1.0]);
    }
}
