//! Text the host keeps or shows for a process, cut to a bound on a character boundary, with
//! `…` where it was cut: so a guest's string never makes the host hold or echo more.

/// The longest message an exit reason carries; a longer one is cut.
const MAX_REASON: usize = 4 << 10;

/// The largest character boundary of `text` at or below `at`.
pub fn char_boundary(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `text`, cut at `max` bytes.
pub fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        text.truncate(char_boundary(&text, max));
        text.push('…');
    }
    text
}

/// An exit reason's message, cut at `MAX_REASON` bytes.
pub fn bounded(text: String) -> String {
    cut(text, MAX_REASON)
}
