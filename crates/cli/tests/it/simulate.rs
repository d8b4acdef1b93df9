//! `waygate simulate FILE --env ENV`: every path to a terminal state, with guards and times.

use crate::helpers::{repo, run, Sandbox};

#[test]
fn production_deploy_lists_its_paths_with_guards_and_times() {
    let root = repo();
    let args = [
        "simulate",
        "workflows/production-deploy.ron",
        "--env",
        "production",
        "--format",
        "json",
    ];
    let json = run(&root, &args).code(0).json();
    let paths = json["paths"].as_array().expect("paths");
    assert!(paths.len() > 3, "{json}");
    assert_eq!(json["truncated"], serde_json::Value::Null);
    let happy = &paths[0];
    assert_eq!(happy["end"], "done");
    assert_eq!(happy["terminal"], "Success");
    // The two watches (15m, 1h) at the least; approvals have no most.
    assert_eq!(happy["time"]["least"], "1h15m");
    assert_eq!(happy["time"]["most_ms"], serde_json::Value::Null);
    let into_production = happy["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["to"] == "production")
        .expect("a step into production");
    let guards: Vec<&str> = into_production["guards"]
        .as_array()
        .expect("guards")
        .iter()
        .map(|g| g["name"].as_str().expect("a name"))
        .collect();
    assert!(guards.contains(&"deploy-window"), "{guards:?}");
    // The environment's values show in the guards.
    let health = &into_production["guards"][0]["detail"];
    assert_eq!(
        health,
        "staging-health (Http): GET http://127.0.0.1:8080/health, 10 tries 15s apart"
    );
    let staging = run(
        &root,
        &[
            "simulate",
            "workflows/production-deploy.ron",
            "--env",
            "staging",
        ],
    );
    staging.code(0);
    assert!(
        staging
            .stdout
            .contains("GET http://127.0.0.1:8080/health, 3 tries"),
        "{}",
        staging.stdout
    );
    let ran = run(
        &root,
        &[
            "simulate",
            "workflows/production-deploy.ron",
            "--env",
            "prod",
        ],
    );
    ran.code(1).stderr_has("has no environment `prod`");
}

#[test]
fn loops_are_listed_and_an_exponential_graph_stops_at_a_limit() {
    let sandbox = Sandbox::new();
    let mut states = String::new();
    let mut transitions = String::from("(from: \"end0\", to: \"s0\"),");
    for i in 0..20 {
        let next = if i == 19 {
            "end".to_owned()
        } else {
            format!("s{}", i + 1)
        };
        states.push_str(&format!("\"s{i}\": (), \"a{i}\": (), \"b{i}\": (),"));
        transitions.push_str(&format!(
            "(from: \"s{i}\", to: \"a{i}\"), (from: \"s{i}\", to: \"b{i}\"), (from: \"a{i}\", to: \"{next}\"), (from: \"b{i}\", to: \"{next}\"),"
        ));
    }
    let file = sandbox.write(
        "many.ron",
        &format!(
            "Workflow(name: \"many\", initial: \"end0\", states: {{ \"end0\": (), {states} \"end\": (terminal: Success) }}, transitions: [{transitions} (from: \"a19\", to: \"end0\")])"
        ),
    );
    let file = file.display().to_string();
    // 2^20 paths: answered at the limit, not enumerated.
    let ran = run(
        sandbox.path(),
        &["simulate", &file, "--env", "any", "--format", "json"],
    );
    ran.code(0);
    let json = ran.json();
    assert_eq!(json["paths"].as_array().map(Vec::len), Some(1000));
    assert_eq!(json["truncated"]["paths"], 1000);
    assert_eq!(json["loops"][0]["from"], "a19");
    assert_eq!(json["loops"][0]["to"], "end0");
    ran.stderr_has("stopped at the limit");
}
