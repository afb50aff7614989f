//! Activation capture: run a model over a data set and keep the chosen sites.

use crate::data::Dataset;
use crate::io::HostTensor;
use crate::model::Model;
use crate::tensor::{from_vec, infer_device, to_vec};
use crate::Result;

/// Activations of `sites` for every sample of `data`, one tensor per site shaped
/// `[samples, per-sample shape...]`. `limit` keeps only the first samples.
pub fn capture(model: &Model, data: &Dataset, sites: &[String], batch_size: usize, limit: Option<usize>) -> Result<Vec<HostTensor>> {
    model.check_sites(sites)?;
    let dev = infer_device();
    let model = model.to_device(&dev);
    let n = limit.map_or(data.len(), |l| l.min(data.len()));
    let mut out: Vec<HostTensor> = sites
        .iter()
        .map(|s| HostTensor { name: s.clone(), shape: Vec::new(), data: Vec::new() })
        .collect();
    let mut start = 0;
    while start < n {
        let end = (start + batch_size.max(1)).min(n);
        let mut x = Vec::with_capacity((end - start) * data.input_dim);
        for i in start..end {
            x.extend_from_slice(data.input(i));
        }
        let x = from_vec(x, [end - start, data.input_dim], &dev);
        let (_, found) = model.forward_sites(x, sites)?;
        for (slot, site) in out.iter_mut().zip(found) {
            slot.shape = std::iter::once(n).chain(site.shape.iter().copied()).collect();
            slot.data.extend(to_vec(site.value));
        }
        start = end;
    }
    Ok(out)
}
