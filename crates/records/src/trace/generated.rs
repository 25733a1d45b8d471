//! A built-in synthetic trace for demo runs without a data file.
//!
//! Each subject has a fasting baseline, a morning rise, three meals a day with a rise that
//! peaks about 50 minutes after eating, and slowly varying sensor noise. The curve is
//! plausible to look at and clamped to the 40 to 400 mg/dL that sensors report; it is not
//! a physiological model and not for evaluating analytics.

use super::TraceReading;

/// Start of every generated trace: 2024-01-01 00:00:00 UTC.
const START_S: i64 = 1_704_067_200;
/// Sampling interval of a CGM.
const INTERVAL_S: i64 = 300;
const SENSOR_MIN_MG_DL: f64 = 40.0;
const SENSOR_MAX_MG_DL: f64 = 400.0;
/// Minutes from meal to peak of the glucose rise.
const MEAL_PEAK_MIN: f64 = 50.0;
/// Nominal meal times in minutes after midnight: 07:30, 12:30 and 19:00.
const MEAL_TIMES_MIN: [f64; 3] = [450.0, 750.0, 1140.0];

/// Generates `readings_per_subject` readings 5 minutes apart for each of `subjects`
/// subjects named `Generated 1`, `Generated 2`, ..., grouped by subject.
///
/// The same arguments give the same trace, and different seeds give different traces.
/// NOTE: `exp` and `cos` come from the platform's math library, so on another platform a
/// rare reading may round to a value 1 mg/dL apart.
pub fn generated_trace(
    subjects: usize,
    readings_per_subject: usize,
    seed: u64,
) -> Vec<TraceReading> {
    let mut trace = Vec::with_capacity(subjects.saturating_mul(readings_per_subject));
    for subject in 0..subjects {
        append_subject(&mut trace, subject as u64, readings_per_subject, seed);
    }
    trace
}

fn append_subject(trace: &mut Vec<TraceReading>, subject: u64, count: usize, seed: u64) {
    let key = mix(seed ^ mix(subject.wrapping_add(1)));
    let baseline = 90.0 + 45.0 * unit(key, 1);
    let dawn_rise = 10.0 + 20.0 * unit(key, 2);
    let meal_scale = 0.6 + 0.6 * unit(key, 3);
    let start_s = START_S + (unit(key, 4) * INTERVAL_S as f64) as i64;
    let name = format!("Generated {}", subject + 1);

    let mut noise = 0.0;
    let mut noise_state = key;
    for index in 0..count {
        let time_s = start_s.saturating_add((index as i64).saturating_mul(INTERVAL_S));
        let minutes = (time_s - START_S) as f64 / 60.0;

        // First-order autoregressive noise: each step keeps 85 % of the previous error.
        noise_state = mix(noise_state);
        noise = 0.85 * noise + 6.0 * (unit(noise_state, 0) - 0.5);

        let glucose = baseline
            + dawn_rise * dawn_curve(minutes)
            + meal_scale * meals_at(key, minutes)
            + noise;
        trace.push(TraceReading {
            subject: name.clone(),
            time_s,
            // The clamp keeps the value within u16 range, so the cast is exact.
            glucose_mg_dl: glucose.round().clamp(SENSOR_MIN_MG_DL, SENSOR_MAX_MG_DL) as u16,
        });
    }
}

/// A bump from 03:00 to 09:00, highest at 06:00, between 0 and 1.
fn dawn_curve(minutes: f64) -> f64 {
    let from_six = (minutes.rem_euclid(1440.0) - 360.0) / 180.0;
    if from_six.abs() >= 1.0 {
        0.0
    } else {
        0.5 * (1.0 + (std::f64::consts::PI * from_six).cos())
    }
}

/// Sum of the rises of today's and yesterday's meals, in mg/dL.
fn meals_at(key: u64, minutes: f64) -> f64 {
    let today = (minutes / 1440.0).floor() as i64;
    let mut total = 0.0;
    for day in [today - 1, today] {
        for (slot, nominal) in MEAL_TIMES_MIN.iter().enumerate() {
            let meal_key = mix(key ^ mix((day as u64).wrapping_mul(8).wrapping_add(slot as u64)));
            let eaten_at = day as f64 * 1440.0 + nominal + 60.0 * (unit(meal_key, 1) - 0.5);
            let size = 30.0 + 60.0 * unit(meal_key, 2);
            total += size * meal_response(minutes - eaten_at);
        }
    }
    total
}

/// Rise after a meal, 1 at the peak: (t/T)² × e^(2 − 2t/T) for t ≥ 0 minutes after
/// eating. It starts flat, so the steepest rise stays under 4 mg/dL per minute.
fn meal_response(since_meal_min: f64) -> f64 {
    if since_meal_min < 0.0 {
        return 0.0;
    }
    let ratio = since_meal_min / MEAL_PEAK_MIN;
    ratio * ratio * (2.0 - 2.0 * ratio).exp()
}

/// SplitMix64 finalizer: a fixed bijection that scatters the bits of its input.
fn mix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// A number in [0, 1) derived from `key` and `stream`.
fn unit(key: u64, stream: u64) -> f64 {
    // The top 53 bits fill the mantissa of an f64 exactly.
    (mix(key ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93)) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_trace() {
        assert_eq!(generated_trace(3, 500, 7), generated_trace(3, 500, 7));
    }

    #[test]
    fn different_seeds_give_different_traces() {
        assert_ne!(generated_trace(1, 300, 1), generated_trace(1, 300, 2));
    }

    #[test]
    fn trace_has_requested_shape() {
        let trace = generated_trace(2, 288, 42);
        assert_eq!(trace.len(), 576);
        assert!(trace[..288]
            .iter()
            .all(|reading| reading.subject == "Generated 1"));
        assert!(trace[288..]
            .iter()
            .all(|reading| reading.subject == "Generated 2"));
        for pair in trace[..288].windows(2) {
            assert_eq!(pair[1].time_s - pair[0].time_s, INTERVAL_S);
        }
        assert!(trace[0].time_s >= START_S);
        assert!(trace[0].time_s < START_S + INTERVAL_S);
    }

    #[test]
    fn values_stay_in_sensor_range_and_vary() {
        let trace = generated_trace(5, 2016, 99);
        let min = trace.iter().map(|reading| reading.glucose_mg_dl).min();
        let max = trace.iter().map(|reading| reading.glucose_mg_dl).max();
        assert!(min >= Some(40), "{min:?}");
        assert!(max <= Some(400), "{max:?}");
        // Meals must show: a day spans at least 40 mg/dL.
        assert!(max.unwrap_or(0) - min.unwrap_or(0) >= 40, "{min:?} {max:?}");
        let mean = trace
            .iter()
            .map(|reading| f64::from(reading.glucose_mg_dl))
            .sum::<f64>()
            / trace.len() as f64;
        assert!((90.0..=220.0).contains(&mean), "mean {mean}");
    }

    #[test]
    fn consecutive_readings_change_smoothly() {
        let trace = generated_trace(1, 2016, 5);
        for pair in trace.windows(2) {
            let step = i32::from(pair[1].glucose_mg_dl) - i32::from(pair[0].glucose_mg_dl);
            assert!(
                step.abs() <= 25,
                "jump of {step} mg/dL at {}",
                pair[1].time_s
            );
        }
    }

    #[test]
    fn pinned_values_do_not_drift() {
        let trace = generated_trace(1, 3, 0);
        let values: Vec<u16> = trace.iter().map(|reading| reading.glucose_mg_dl).collect();
        assert_eq!(values, PINNED_SEED_0);
    }

    /// First three values for seed 0; a change here changes every demo run.
    const PINNED_SEED_0: [u16; 3] = [118, 116, 119];
}
