//! The words on a workflow's picture, the same in every format (DOT, Mermaid, SVG): a guard
//! as `name (Kind detail)` with durations and windows spelled out, a description with its own
//! line breaks kept, long text wrapped. Names go through [`escape_control`] first (a name is
//! shown as one line, without terminal escapes or invisible characters, as everywhere else);
//! each format then escapes for its own syntax.

use waygate_core::duration::format_duration;
use waygate_core::model::{Check, Guard};
use waygate_core::spec::Weekday;
use waygate_core::text::escape_control;

/// A guard as labelled on an edge: `deploy-window (Window Mon-Thu 09:00-16:00 Europe/London)`.
pub fn guard_label(g: &Guard) -> String {
    let detail = match &g.check {
        Check::Wait(d) => format!("Wait {}", format_duration(*d)),
        Check::Watch(w) => format!("Watch {}", format_duration(w.duration)),
        Check::Window(w) => format!(
            "Window {} {}-{} {}",
            days_label(&w.days),
            w.start.strftime("%H:%M"),
            w.end.strftime("%H:%M"),
            w.tz_name
        ),
        other => other.kind().to_owned(),
    };
    format!("{} ({detail})", escape_control(&g.name))
}

/// A window's days: `Mon-Fri` for a run of three or more consecutive days, else `Mon,Wed`.
fn days_label(days: &[Weekday]) -> String {
    const ORDER: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let open: Vec<usize> = (0..7).filter(|&i| days.contains(&ORDER[i])).collect();
    let name = |i: usize| format!("{:?}", ORDER[i]);
    if open.len() == 7 {
        return "every day".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < open.len() {
        let mut j = i;
        while j + 1 < open.len() && open[j + 1] == open[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{}-{}", name(open[i]), name(open[j])));
        } else {
            parts.extend((i..=j).map(|k| name(open[k])));
        }
        i = j + 1;
    }
    parts.join(",")
}

/// A description as shown: its own line breaks kept, every other control or invisible
/// character escaped (descriptions are text from the file, like names).
pub fn described(text: &str) -> String {
    text.lines()
        .map(|l| escape_control(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` broken into lines of about `width` characters at spaces.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.chars().count() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.chars().count();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_days_are_named() {
        use Weekday::*;
        assert_eq!(days_label(&[Mon, Tue, Wed, Thu, Fri]), "Mon-Fri");
        assert_eq!(days_label(&[Mon, Wed]), "Mon,Wed");
        assert_eq!(days_label(&[Sat, Mon, Tue, Sun, Wed]), "Mon-Wed,Sat,Sun");
        assert_eq!(
            days_label(&[Mon, Tue, Wed, Thu, Fri, Sat, Sun]),
            "every day"
        );
    }

    #[test]
    fn descriptions_keep_their_lines_and_escape_the_rest() {
        assert_eq!(described("a\nb\u{1b}[2J"), "a\nb\\u{1b}[2J");
    }
}
