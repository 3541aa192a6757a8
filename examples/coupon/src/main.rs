//! Runs a coupon scenario with the extended registry:
//! `cargo run -p shoplab-example-coupon -- examples/coupon/coupon.toml`.

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .unwrap_or_else(|| "examples/coupon/coupon.toml".into());
    let results = args.next().unwrap_or_else(|| "results".into());
    let dir = shoplab_example_coupon::run(file.as_ref(), results.as_ref())?;
    println!("wrote {}", dir.display());
    Ok(())
}
