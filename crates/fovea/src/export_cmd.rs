//! `fovea export MODEL.safetensors --format onnx -o model.onnx`: a Fovea model file (Sequential
//! or functional) in a format other runtimes read.

use crate::model_file::{check_writable, ModelFile};
use clap::{Args, ValueEnum};
use fovea::nn::export::onnx::{export_onnx, OPSET};
use std::path::PathBuf;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The formats `fovea export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ONNX (opset 17): NHWC input and outputs as in Fovea, for onnxruntime, TensorRT, OpenVINO.
    Onnx,
}

/// The arguments of `fovea export`.
#[derive(Args)]
pub struct ExportArgs {
    /// The Fovea model file (.safetensors, as `train -o`, `create` and `convert` write).
    pub model: PathBuf,
    /// The format to write.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Where to write the exported model (written atomically).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `fovea export` and returns the line to print.
pub fn run(args: &ExportArgs) -> AnyResult<String> {
    if !args.model.is_file() {
        return Err(format!("export: {}: no such model file (expected a Fovea .safetensors model)", args.model.display()).into());
    }
    check_writable("-o", &args.output)?;
    let model = ModelFile::load(&args.model).map_err(|e| format!("export: cannot load {}: {e}", args.model.display()))?;
    match args.format {
        Format::Onnx => match &model {
            ModelFile::Sequential(m) => export_onnx(m, &args.output)?,
            ModelFile::Functional(m) => export_onnx(m, &args.output)?,
        },
    }
    Ok(format!("Wrote {} (ONNX opset {OPSET}, NHWC input as in Fovea)", args.output.display()))
}
