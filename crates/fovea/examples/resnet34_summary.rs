//! Géron's ResNet-34 (a `Sequential` stem and sixteen `ResidualUnit` custom layers) and its
//! Keras summary: 21,306,826 parameters, 17,024 of them non-trainable.
//!
//! Run: `cargo run --release -p fovea --example resnet34_summary`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = fovea::vision::applications::resnet34_geron((224, 224, 3), 10)?;
    print!("{}", model.summary()?);
    Ok(())
}
