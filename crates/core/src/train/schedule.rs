//! Learning-rate schedules, evaluated once per epoch as in the bilinear reference code
//! (torch CosineAnnealingLR with T_max = epochs, stepped per epoch).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Constant,
    Cosine,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    /// Linear warm-up over this many epochs: epoch e < warmup uses lr * (e + 1) / warmup.
    pub warmup_epochs: usize,
    pub min_lr: f64,
}

impl Schedule {
    /// The learning rate for 0-based `epoch` of `epochs`.
    pub fn lr(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        if epoch < self.warmup_epochs {
            return base * (epoch + 1) as f64 / self.warmup_epochs as f64;
        }
        match self.kind {
            ScheduleKind::Constant => base,
            ScheduleKind::Cosine => {
                let span = epochs.saturating_sub(self.warmup_epochs).max(1) as f64;
                let t = (epoch - self.warmup_epochs) as f64;
                self.min_lr + (base - self.min_lr) * (1.0 + (std::f64::consts::PI * t / span).cos()) / 2.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_matches_torch_cosine_annealing() {
        // torch: eta_min + (base - eta_min) * (1 + cos(pi * e / T)) / 2
        let s = Schedule { kind: ScheduleKind::Cosine, warmup_epochs: 0, min_lr: 0.0 };
        assert_eq!(s.lr(1e-3, 0, 10), 1e-3);
        assert!((s.lr(1e-3, 5, 10) - 0.5e-3).abs() < 1e-15);
        let e3 = 1e-3 * (1.0 + (std::f64::consts::PI * 0.3).cos()) / 2.0;
        assert!((s.lr(1e-3, 3, 10) - e3).abs() < 1e-15);
    }

    #[test]
    fn warmup_then_cosine() {
        let s = Schedule { kind: ScheduleKind::Cosine, warmup_epochs: 2, min_lr: 0.0 };
        assert_eq!(s.lr(1.0, 0, 12), 0.5);
        assert_eq!(s.lr(1.0, 1, 12), 1.0);
        assert_eq!(s.lr(1.0, 2, 12), 1.0);
        assert!((s.lr(1.0, 7, 12) - 0.5).abs() < 1e-12);
    }
}
