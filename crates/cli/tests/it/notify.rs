//! Notifications: `notify` hooks sent once per occurrence to a real webhook on 127.0.0.1,
//! recorded in the history, and never failing a run when they fail.

use crate::helpers::{on_both_stores, Sandbox, Server};

fn flow(url: &str) -> String {
    format!(
        r#"Workflow(
    name: "chat", initial: "canary", rollback: "undo",
    notify: [
        (on: [ApprovalWaiting, RollbackStarted, RunEnded],
         action: Http(url: "{url}", body: {{ "text": "${{notify.message}}", "on": "${{notify.on}}", "command": "${{notify.command}}" }})),
    ],
    states: {{
        "canary": (),
        "undo": (on_enter: [Command(run: ["true"])], on_failure: "failed"),
        "done": (terminal: Success),
        "failed": (terminal: Failure),
    }},
    transitions: [
        (from: "canary", to: "done", guards: [(name: "sign-off", check: Approval(prompt: "Canary dashboards green in ${{run.env}}"))]),
        (from: "undo", to: "failed"),
    ],
)"#
    )
}

#[test]
fn each_occurrence_is_sent_once_however_often_the_run_is_looked_at() {
    let server = Server::start();
    server.respond(200, "ok");
    let sb = Sandbox::new();
    sb.write("chat.ron", &flow(&server.url("/hook")));
    let run = sb.start("ana", "chat.ron", "prod", &[]);
    // Three looks at the waiting run, from three processes: one message.
    for _ in 0..3 {
        sb.wg_as("ana", &["drive", &run, "--no-wait"]).code(4);
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let store = sb.store();
    let body: serde_json::Value =
        serde_json::from_str(requests[0].split_once('\n').map_or("", |(_, body)| body))
            .expect("a JSON body");
    assert_eq!(body["on"], "ApprovalWaiting");
    let command = format!("waygate --store {} approve {run} sign-off", store.display());
    assert_eq!(body["command"], command.as_str());
    assert_eq!(
        body["text"],
        format!("Run {run} of chat (prod) waits for approval `sign-off` in `canary`: Canary dashboards green in prod (to approve: {command})")
    );

    // A rollback is announced, and so is the end, once each.
    sb.wg_as("bob", &["rollback", &run, "--reason", "error rate up"])
        .code(0);
    sb.wg_as("bob", &["drive", &run]).code(6);
    sb.wg_as("bob", &["drive", &run]).code(6);
    let ons: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| {
            let body: serde_json::Value = serde_json::from_str(r.split_once('\n')?.1).ok()?;
            Some(body["on"].as_str()?.to_owned())
        })
        .collect();
    assert_eq!(ons, ["ApprovalWaiting", "RollbackStarted", "RunEnded"]);
    let notified: Vec<serde_json::Value> = sb
        .history(&run)
        .into_iter()
        .filter(|e| e["kind"] == "Notified")
        .collect();
    assert_eq!(notified.len(), 3);
    assert!(notified.iter().all(|e| e["ok"] == true), "{notified:#?}");
    sb.verify();
}

#[test]
fn a_failing_notification_is_recorded_and_reported_but_the_run_goes_on() {
    let server = Server::start();
    server.respond(500, "chat is down");
    let sb = Sandbox::new();
    sb.write(
        "chat.ron",
        &flow(&server.url("/hook")).replace("(name: \"sign-off\", check: Approval(prompt: \"Canary dashboards green in ${run.env}\"))", ""),
    );
    let ran = sb.wg_as("ana", &["run", "chat.ron", "--env", "prod"]);
    ran.code(0)
        .stderr_has("notification 1 (RunEnded) failed: HTTP 500");
    let run = ran.started_run();
    let history = sb.history(&run);
    let last = history.last().expect("events");
    assert_eq!(last["kind"], "Notified");
    assert_eq!(last["ok"], false);
    assert_eq!(sb.status(&run)["status"], "succeeded");
}

#[test]
fn drives_racing_on_one_waiting_run_send_one_message() {
    let server = Server::start();
    server.respond(200, "ok");
    let sb = Sandbox::new();
    sb.write("chat.ron", &flow(&server.url("/hook")));
    let run = sb.start("ana", "chat.ron", "prod", &[]);
    let drives: Vec<_> = (0..4)
        .map(|i| sb.spawn_as("ana", &format!("drive{i}"), &["drive", &run, "--no-wait"]))
        .collect();
    for d in drives {
        let ran = d.wait(std::time::Duration::from_secs(60));
        assert!(matches!(ran.code, 4 | 5), "{ran:?}");
    }
    assert_eq!(server.requests().len(), 1, "{:#?}", server.requests());
}

#[test]
fn a_closed_window_is_announced_with_when_it_opens() {
    // A one-minute window on a day that is not today (UTC): closed now, whatever the time.
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .weekday()
        .to_monday_zero_offset() as usize;
    let other = days[(today + 3) % 7];
    let sb = Sandbox::new();
    sb.write(
        "win.ron",
        &format!(
            r#"Workflow(
    name: "win", initial: "wait",
    notify: [(on: [WindowClosed], action: Command(run: ["sh", "-c", "printf '%s|%s|%s' \"$1\" \"$2\" \"$3\" > note.txt", "sh", "${{notify.on}}", "${{notify.guard}}", "${{notify.message}}"]))],
    states: {{ "wait": (), "done": (terminal: Success) }},
    transitions: [(from: "wait", to: "done", guards: [
        (name: "hours", check: Window(days: [{other}], start: "10:00", end: "10:01", tz: "UTC")),
    ])],
)"#
        ),
    );
    let run = sb.start("ana", "win.ron", "prod", &[]);
    sb.wg_as("ana", &["drive", &run, "--no-wait"]).code(4);
    let note = std::fs::read_to_string(sb.path().join("note.txt")).expect("notified");
    let prefix = format!("WindowClosed|hours|Run {run} of win (prod) waits in `wait`: deploy window `hours` is closed; opens ");
    assert!(note.starts_with(&prefix), "{note}");
}

/// A process killed between sending a notification and recording it: the next `drive` sends it
/// again (at least once), even though the run has ended, with the same `${notify.id}` so the
/// receiver can drop the second; two drives at once send it once, and later drives not at all.
#[test]
fn a_notification_cut_off_before_its_record_is_sent_again_with_the_same_id() {
    let sb = Sandbox::new();
    // The hook writes the id it was given, and the first time kills the waygate that sent it
    // before that can record the send.
    sb.write(
        "cut.ron",
        r#"Workflow(
    name: "cut", initial: "a",
    notify: [(on: [RunEnded], action: Command(run: ["sh", "-c", "echo \"$1\" >> sent; [ -f once ] || { touch once; kill -9 $PPID; }", "hook", "${notify.id}"]))],
    states: { "a": (), "done": (terminal: Success) },
    transitions: [(from: "a", to: "done")],
)"#,
    );
    let run = sb.start("ana", "cut.ron", "dev", &[]);
    let killed = sb.wg_as("ana", &["drive", &run]);
    assert_eq!(killed.code, -1, "killed by its hook: {}", killed.stderr);
    let sent = || std::fs::read_to_string(sb.path().join("sent")).unwrap_or_default();
    let id = format!("{run}:0:RunEnded\n");
    assert_eq!(sent(), id, "sent once, not recorded");
    assert!(!crate::helpers::kinds(&sb.history(&run)).contains(&"Notified"));
    let racers: Vec<_> = (0..2)
        .map(|i| sb.spawn_as("ana", &format!("drive{i}"), &["drive", &run]))
        .collect();
    for racer in racers {
        racer.wait(std::time::Duration::from_secs(30)).code(0);
    }
    sb.wg_as("ana", &["drive", &run]).code(0);
    assert_eq!(
        sent(),
        format!("{id}{id}"),
        "sent again once, with the same id"
    );
    let history = sb.history(&run);
    let notified = crate::helpers::of_kind(&history, "Notified");
    assert_eq!(notified.len(), 1, "{notified:#?}");
    assert_eq!(notified[0]["ok"], true);
}

on_both_stores! {
    /// A hook that hangs holds the run's lock (two processes never both send one), and a command
    /// that moves the run meanwhile (`rollback`) leaves the new state's entry actions to the lock's
    /// holder. That holder, once its hook is done, announces the move and runs those actions: a
    /// hung webhook never leaves a rollback unannounced and its actions not run.
    fn a_move_made_while_a_hook_hangs_is_announced_and_its_actions_run_by_the_sender(sb: Sandbox) {
    sb.write(
        "hang.ron",
        r#"Workflow(
    name: "hang", initial: "canary", rollback: "undo",
    notify: [
        (on: [ApprovalWaiting], action: Command(run: ["sh", "-c", "touch sending; while [ ! -f go ]; do sleep 0.05; done"], timeout: "30s")),
        (on: [RollbackStarted], action: Command(run: ["sh", "-c", "echo announced >> log"])),
    ],
    states: {
        "canary": (),
        "undo": (on_enter: [Command(run: ["sh", "-c", "echo undone >> log"])], on_failure: "failed"),
        "done": (terminal: Success),
        "failed": (terminal: Failure),
    },
    transitions: [
        (from: "canary", to: "done", guards: [(name: "sign-off", check: Approval(prompt: "ship?"))]),
        (from: "undo", to: "failed"),
    ],
)"#,
    );
    let run = sb.start("ana", "hang.ron", "prod", &[]);
    let drive = sb.spawn_as("ana", "drive", &["drive", &run, "--no-wait"]);
    let limit = std::time::Duration::from_secs(30);
    crate::helpers::wait_until("the hook to hang", limit, || {
        sb.path().join("sending").exists()
    });
    sb.wg_as("bob", &["rollback", &run, "--reason", "error rate up"])
        .code(0);
    sb.write("go", "");
    // The drive follows the move it made way for: the rollback runs and ends in `failed`.
    drive.wait(std::time::Duration::from_secs(60)).code(6);
    let log = std::fs::read_to_string(sb.path().join("log")).unwrap_or_default();
    assert_eq!(log, "announced\nundone\n");
    assert_eq!(sb.status(&run)["state"], "failed");
    }
}

/// A rollback that an incident starts (a failed `on_enter` action) is announced before the
/// rollback state's actions run, as one started by `waygate rollback` is.
#[test]
fn a_rollback_after_a_failed_action_is_announced_before_its_actions_run() {
    let sb = Sandbox::new();
    sb.write(
        "fail.ron",
        r#"Workflow(
    name: "fail", initial: "deploy", rollback: "undo",
    notify: [(on: [RollbackStarted, RunEnded], action: Command(run: ["sh", "-c", "echo \"$1\" >> notes", "hook", "${notify.on}"]))],
    states: {
        "deploy": (on_enter: [Command(run: ["sh", "-c", "echo deploying >> notes; exit 1"])]),
        "undo": (on_enter: [Command(run: ["sh", "-c", "echo undoing >> notes"])], on_failure: "failed"),
        "done": (terminal: Success),
        "failed": (terminal: Failure),
    },
    transitions: [(from: "deploy", to: "done"), (from: "undo", to: "failed")],
)"#,
    );
    sb.wg_as("ana", &["run", "fail.ron", "--env", "prod"])
        .code(6);
    let notes = std::fs::read_to_string(sb.path().join("notes")).unwrap_or_default();
    assert_eq!(notes, "deploying\nRollbackStarted\nundoing\nRunEnded\n");
}

/// An operator's stop does not wait for a hook that hangs, but it is not silent either: the
/// command says which notification it left unsent, and the next `drive` sends it.
#[test]
fn a_notification_cut_short_by_ctrl_c_is_said_to_be_left_for_the_next_drive() {
    let sb = Sandbox::new();
    sb.write(
        "stop.ron",
        r#"Workflow(
    name: "stop", initial: "a",
    notify: [(on: [RunEnded], action: Command(run: ["sh", "-c", "echo \"$1\" >> sent; [ -f once ] && exit 0; touch once; while [ ! -f go ]; do sleep 0.05; done", "hook", "${notify.id}"], timeout: "30s"))],
    states: { "a": (), "done": (terminal: Success) },
    transitions: [(from: "a", to: "done")],
)"#,
    );
    let ran = sb.spawn_as("ana", "run", &["run", "stop.ron", "--env", "prod"]);
    let limit = std::time::Duration::from_secs(30);
    crate::helpers::wait_until("the hook to hang", limit, || {
        sb.path().join("once").exists()
    });
    ran.signal(libc::SIGINT);
    let ran = ran.wait(limit);
    let run = ran.started_run();
    let said = format!(
        "run {run}: notification 1 (RunEnded) not sent: stopped by SIGINT; the next `waygate drive {run}` sends it"
    );
    assert_eq!(ran.stderr.matches(&said).count(), 1, "{}", ran.stderr);
    assert!(!crate::helpers::kinds(&sb.history(&run)).contains(&"Notified"));
    sb.wg_as("ana", &["drive", &run]).code(0);
    let id = format!("{run}:0:RunEnded\n");
    let sent = std::fs::read_to_string(sb.path().join("sent")).unwrap_or_default();
    assert_eq!(sent, format!("{id}{id}"));
    assert_eq!(
        crate::helpers::of_kind(&sb.history(&run), "Notified").len(),
        1
    );
}
