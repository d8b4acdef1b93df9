use super::*;

fn workflow(text: &str) -> Workflow {
    let v = crate::validate::validate("w.ron", text);
    v.workflow
        .unwrap_or_else(|| panic!("validates: {:#?}", v.diagnostics))
}

fn names(w: &Workflow, p: &Path) -> Vec<String> {
    std::iter::once(w.state(w.initial).name.clone())
        .chain(p.steps.iter().map(|s| w.state(s.to).name.clone()))
        .collect()
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

const BAKE: &str = r#"Workflow(
    name: "bake",
    initial: "build",
    rollback: "undo",
    states: {
        "build": (on_enter: [Command(run: ["make"], timeout: "2m")]),
        "prod": (on_failure: "undo", deadline: "1h"),
        "undo": (on_failure: "undone"),
        "done": (terminal: Success),
        "undone": (terminal: Failure),
    },
    transitions: [
        (from: "build", to: "prod", guards: [
            (name: "tests", check: Command(run: ["t"], timeout: "1m"), retry: (attempts: 3, delay: "30s")),
        ]),
        (from: "prod", to: "done", guards: [
            (name: "bake", check: Wait(duration: "10m")),
            (name: "watch", check: Watch(check: Http(url: "http://x"), duration: "15m", interval: "1m")),
        ]),
        (from: "undo", to: "undone", guards: [(name: "ok", check: Approval(prompt: "reverted?"))]),
        (from: "undo", to: "build"),
    ],
)"#;

#[test]
fn every_path_to_a_terminal_with_its_least_and_most_time() {
    let w = workflow(BAKE);
    let sim = simulate(&w, Limits::default());
    let listed: Vec<(Vec<String>, Span)> =
        sim.paths.iter().map(|p| (names(&w, p), p.time)).collect();
    let path = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        listed,
        [
            // build: make (up to 2m) then tests (3 tries of 1m, 30s apart): 0 .. 6m;
            // prod: the watch (15m, up to 16m) outlasts the bake.
            (
                path(&["build", "prod", "done"]),
                Span {
                    least: mins(15),
                    most: Some(mins(22))
                }
            ),
            // prod fails (at once, or at its 1h deadline); the approval has no most; then
            // undo's on_failure, a second way to undone.
            (
                path(&["build", "prod", "undo", "undone"]),
                Span {
                    least: Duration::ZERO,
                    most: None
                }
            ),
            (
                path(&["build", "prod", "undo", "undone"]),
                Span {
                    least: Duration::ZERO,
                    most: None
                }
            ),
            // build's failed action falls back to the rollback.
            (
                path(&["build", "undo", "undone"]),
                Span {
                    least: Duration::ZERO,
                    most: None
                }
            ),
            (
                path(&["build", "undo", "undone"]),
                Span {
                    least: Duration::ZERO,
                    most: None
                }
            ),
        ]
    );
    // undo -> build closes a loop: listed once, not followed.
    let loops: Vec<(String, String)> = sim
        .loops
        .iter()
        .map(|&(a, b, _)| (w.state(a).name.clone(), w.state(b).name.clone()))
        .collect();
    assert_eq!(loops, [("undo".to_owned(), "build".to_owned())]);
    assert!(sim.truncated.is_none());
}

#[test]
fn guards_that_outlast_the_deadline_make_the_path_impossible() {
    let w = workflow(&BAKE.replace("deadline: \"1h\"", "deadline: \"12m\""));
    let sim = simulate(&w, Limits::default());
    let first = &sim.paths[0];
    assert!(first.impossible());
    let why = first.steps[1].impossible.as_deref().expect("a reason");
    assert!(
        why.contains("at least 15m") && why.contains("deadline of 12m"),
        "{why}"
    );
    assert_eq!(first.steps[1].time.most, Some(mins(12)));
}

#[test]
fn an_exponential_graph_stops_at_the_limit_and_says_so() {
    // 40 diamonds in a row: 2^40 paths.
    let mut states = String::new();
    let mut transitions = String::new();
    for i in 0..40 {
        states.push_str(&format!("\"s{i}\": (), \"a{i}\": (), \"b{i}\": (),"));
        let next = if i == 39 {
            "end".to_owned()
        } else {
            format!("s{}", i + 1)
        };
        transitions.push_str(&format!(
            "(from: \"s{i}\", to: \"a{i}\"), (from: \"s{i}\", to: \"b{i}\"), (from: \"a{i}\", to: \"{next}\"), (from: \"b{i}\", to: \"{next}\"),"
        ));
    }
    let text = format!(
        "Workflow(name: \"x\", initial: \"s0\", states: {{ {states} \"end\": (terminal: Success) }}, transitions: [{transitions}])"
    );
    let w = workflow(&text);
    let sim = simulate(
        &w,
        Limits {
            paths: 100,
            steps: 1_000_000,
        },
    );
    assert_eq!(sim.paths.len(), 100);
    assert!(sim.truncated.is_some());
    let sim = simulate(
        &w,
        Limits {
            paths: 1_000_000,
            steps: 10_000,
        },
    );
    assert!(sim.truncated.is_some());
    assert!(sim.paths.len() < 1_000_000);
}

#[test]
fn a_window_is_closed_at_most_its_longest_gap() {
    let text = r#"Workflow(name: "x", initial: "a", states: { "a": (), "b": (terminal: Success) },
        transitions: [(from: "a", to: "b", guards: [
            (name: "w", check: Window(days: [Mon, Tue, Wed, Thu], start: "09:00", end: "16:00", tz: "UTC")),
        ])])"#;
    let w = workflow(text);
    let sim = simulate(&w, Limits::default());
    // Thursday 16:00 to Monday 09:00.
    assert_eq!(sim.paths[0].time.most, Some(mins(3 * 24 * 60 + 17 * 60)));
    let overnight = text.replace(
        "start: \"09:00\", end: \"16:00\"",
        "start: \"22:00\", end: \"02:00\"",
    );
    let sim = simulate(&workflow(&overnight), Limits::default());
    // Friday 02:00 to Monday 22:00.
    assert_eq!(sim.paths[0].time.most, Some(mins(3 * 24 * 60 + 20 * 60)));
}

#[test]
fn production_deploy_has_a_path_to_each_terminal() {
    let w = workflow(include_str!("../../../../workflows/production-deploy.ron"));
    let sim = simulate(&w, Limits::default());
    assert!(sim.truncated.is_none());
    let ends: HashSet<String> = sim
        .paths
        .iter()
        .map(|p| w.state(p.end).name.clone())
        .collect();
    assert_eq!(
        ends,
        HashSet::from(["done".to_owned(), "rolled_back".to_owned()])
    );
    let happy = sim
        .paths
        .iter()
        .find(|p| w.state(p.end).name == "done")
        .expect("a way to done");
    // The 15-minute and one-hour watches at the least.
    assert!(happy.time.least >= mins(75), "{:?}", happy.time);
    assert_eq!(happy.time.most, None, "approvals have no most");
}

/// Exactly as many paths as the limit is not "more exist": the rest of the graph (here a
/// retry loop that reaches no other terminal) is still looked at, and only a path beyond
/// the limit stops enumeration.
#[test]
fn exactly_the_limit_of_paths_is_not_truncated() {
    let w = workflow(
        r#"Workflow(name: "x", initial: "a",
            states: { "a": (), "retry": (), "ok": (terminal: Success), "bad": (terminal: Failure) },
            transitions: [
                (from: "a", to: "ok"), (from: "a", to: "bad"),
                (from: "a", to: "retry"), (from: "retry", to: "a"),
            ])"#,
    );
    let two = Limits {
        paths: 2,
        steps: 1_000,
    };
    let sim = simulate(&w, two);
    assert_eq!(sim.paths.len(), 2);
    assert!(sim.truncated.is_none(), "{:?}", sim.truncated);
    assert_eq!(sim.loops.len(), 1);
    let one = Limits {
        paths: 1,
        steps: 1_000,
    };
    let sim = simulate(&w, one);
    assert_eq!(sim.paths.len(), 1);
    assert!(sim.truncated.is_some());
}
