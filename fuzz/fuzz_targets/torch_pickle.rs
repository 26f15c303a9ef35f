//! PyTorch `torch.save` files (zip layout and the restricted pickle reader).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fovea_nn::import::torch::state_dict_from_bytes(data, "fuzz.pt");
});
