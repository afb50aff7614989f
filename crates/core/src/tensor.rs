//! The thin layer over burn: devices and conversions between tensors and plain vectors.
//! Nothing outside glassbox-core names a burn type other than [`Tensor`] and [`Device`].

pub use burn::tensor::{Device, Tensor, TensorData};

/// A CPU device that records gradients (training).
pub fn train_device() -> Device {
    Device::flex().autodiff()
}

/// A CPU device without autodiff (inference, analysis).
pub fn infer_device() -> Device {
    Device::flex()
}

/// Row-major f32 values of any float tensor.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("tensor data converted to f32")
}

pub fn from_vec<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The value of a one-element tensor as f64.
pub fn scalar(t: Tensor<1>) -> f64 {
    to_vec(t)[0] as f64
}
