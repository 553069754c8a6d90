//! The values people write in the registry and the root file: sizes (`"64MiB"`) and
//! durations (`"100ms"`), each with the message and hint shown when one does not parse.

use std::time::Duration;

/// What to tell someone whose size did not parse.
pub const SIZE_HINT: &str = "write sizes like \"64MiB\", \"512KiB\"";

/// What to tell someone whose duration did not parse.
pub const DURATION_HINT: &str = "write durations like \"100ms\", \"5s\", \"2m\"";

/// `"64MiB"` → 67108864.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|err| format!("`{text}` is not a size: {err}"))
}

/// `"100ms"` → 100 ms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("`{text}` is not a duration: {err}"))
}

/// What to tell someone whose share of a core did not parse.
pub const RATE_HINT: &str = "write a share of one core like \"25%\"";

/// `"25%"` → 250 per mille, from 0.1% to 100%.
pub fn parse_rate(text: &str) -> Result<u32, String> {
    let bad = || format!("`{text}` is not a share of one core between 0.1% and 100%");
    let percent: f64 = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(bad)?
        .trim()
        .parse()
        .map_err(|_| bad())?;
    if !(0.1..=100.0).contains(&percent) {
        return Err(bad());
    }
    Ok((percent * 10.0).round() as u32)
}

/// A size for people: `64.0 MiB`, `12 B`.
pub fn show_size(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_as_written() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64B"), Ok(64));
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert!(parse_size("lots").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_rate("25%"), Ok(250));
        assert_eq!(parse_rate("0.5 %"), Ok(5));
        assert!(parse_rate("120%").is_err());
        assert!(parse_rate("25").is_err());
    }
}
