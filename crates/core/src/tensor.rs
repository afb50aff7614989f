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

/// A float tensor's values on the host, taken over without a copy when the tensor's buffer is
/// unshared. `to_vec` has to copy buffers that burn allocated itself (op outputs such as
/// gradients), because they are aligned wider than a `Vec<f32>` may be; this keeps burn's
/// buffer and lends it out as a slice.
pub struct HostValues(TensorData);

impl HostValues {
    pub fn new<const D: usize>(t: Tensor<D>) -> Self {
        HostValues(t.into_data().convert::<f32>())
    }

    pub fn zeros(n: usize) -> Self {
        HostValues(TensorData::new(vec![0f32; n], [n]))
    }
}

impl AsRef<[f32]> for HostValues {
    fn as_ref(&self) -> &[f32] {
        self.0.as_slice().expect("host values hold f32 (converted in new)")
    }
}

/// The value of a one-element tensor as f64.
pub fn scalar(t: Tensor<1>) -> f64 {
    to_vec(t)[0] as f64
}
