//! `waygate test`'s cost: one scenario of `workflows/tests/` through the real engine on a
//! paused clock, start to end (the runtime built, the run started, driven and read back).

use criterion::{criterion_group, criterion_main, Criterion};
use waygate_core::scenario;
use waygate_core::validate::validate;

const DEPLOY: &str = include_str!("../../../workflows/production-deploy.ron");
const WATCH: &str = include_str!("../../../workflows/tests/deploy-health-fails-in-watch.ron");
const QUICKSTART: &str = include_str!("../../../workflows/examples/quickstart.ron");
const QUICK: &str = include_str!("../../../workflows/tests/quickstart.ron");

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("scenario");
    group.sample_size(10);
    for (name, workflow, text) in [
        ("production_deploy_health_fails_in_watch", DEPLOY, WATCH),
        ("quickstart", QUICKSTART, QUICK),
    ] {
        let w = validate("w.ron", workflow).workflow.expect("validates");
        let s = scenario::read("s.ron", text).scenario.expect("reads");
        let ran = waygate_executor::scenario::run(&s, &w, "w.ron", workflow).expect("runs");
        assert_eq!(ran.state, s.expect.state);
        group.bench_function(name, |b| {
            b.iter(|| waygate_executor::scenario::run(&s, &w, "w.ron", workflow))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
