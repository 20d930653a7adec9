//! Every kind of problem, where it is reported (file, line, column, key path) and what it
//! says; several problems reported together; the rendered report.

use hive_config::{
    Config, Diagnostic, DiagnosticKind as Kind, Environment, Loader, check_config,
    check_config_with,
};

/// The variables the inline configs may name.
fn loader() -> Loader {
    Loader::new().env(Environment::vars([
        ("OPENAI_API_KEY", "sk-test-openai-key"),
        ("SLACK_URL", "https://hooks.slack.com/services/T0/B0/xyz"),
        (
            "LOGIN_URL",
            "https://hook-user:hook-password@hooks.example.com/x",
        ),
        ("EMPTY_VAR", ""),
    ]))
}

fn load(resilience: &str, models: &str) -> Result<Config, hive_config::Diagnostics> {
    loader().load_str("cfg", Some(resilience), Some(models))
}

/// Every problem of a config that must not load.
fn problems(resilience: &str, models: &str) -> Vec<Diagnostic> {
    match load(resilience, models) {
        Ok(_) => panic!("the config loaded"),
        Err(problems) => problems.as_slice().to_vec(),
    }
}

/// The one problem of a config.
fn only(resilience: &str, models: &str) -> Diagnostic {
    let mut all = problems(resilience, models);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

/// Kind, file name, line, column, key path.
fn at(d: &Diagnostic) -> (Kind, String, usize, usize, String) {
    let file = d
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (d.kind, file, d.line, d.column, d.path.clone())
}

fn spot(
    kind: Kind,
    file: &str,
    line: usize,
    column: usize,
    path: &str,
) -> (Kind, String, usize, usize, String) {
    (kind, file.to_owned(), line, column, path.to_owned())
}

const R: &str = "resilience.yml";
const M: &str = "models-resilience.yml";

#[test]
fn an_unknown_key_names_the_closest_valid_key_or_lists_them() {
    let d = only("defaults:\n  retry:\n    max_attemps: 2\n", "");
    assert_eq!(
        at(&d),
        spot(Kind::UnknownKey, R, 3, 5, "defaults.retry.max_attemps")
    );
    assert_eq!(d.message, "unknown key `max_attemps`");
    assert_eq!(d.help.as_deref(), Some("did you mean `max_attempts`?"));

    let d = only("server:\n  colour: blue\n", "");
    assert_eq!(at(&d), spot(Kind::UnknownKey, R, 2, 3, "server.colour"));
    assert_eq!(
        d.help.as_deref(),
        Some("the keys here are `listen`, `body_limit`, `shutdown_grace` or `api_keys`")
    );

    // A word of a closed set (a jitter, a condition) gets a suggestion too.
    let d = only("defaults:\n  retry:\n    backoff: { jitter: ful }\n", "");
    assert_eq!(
        at(&d),
        spot(
            Kind::InvalidValue,
            R,
            3,
            24,
            "defaults.retry.backoff.jitter"
        )
    );
    assert_eq!(d.message, "`ful` is not a jitter");
    assert_eq!(d.help.as_deref(), Some("did you mean `full`?"));
}

#[test]
fn a_section_of_the_other_file_says_where_it_belongs() {
    let all = problems("routes: []\n", "defaults: {}\n");
    let got: Vec<_> = all.iter().map(|d| (at(d), d.message.clone())).collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::Conflict, R, 1, 1, "routes"),
                "`routes` belongs in models-resilience.yml".to_owned()
            ),
            (
                spot(Kind::Conflict, M, 1, 1, "defaults"),
                "`defaults` belongs in resilience.yml".to_owned()
            ),
        ]
    );
}

#[test]
fn wrong_types_say_what_was_expected_and_what_was_found() {
    let all = problems(
        "metrics: yes\nserver:\n  listen: 8080\n  api_keys: { env: OPENAI_API_KEY }\n",
        "models:\n  gpt-4o: {}\n",
    );
    let got: Vec<_> = all
        .iter()
        .map(|d| (at(d), d.message.clone(), d.help.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::WrongType, R, 1, 10, "metrics"),
                "expected `true` or `false`, found the text `yes`".to_owned(),
                Some("YAML 1.2 reads only `true` and `false` as booleans".to_owned()),
            ),
            (
                spot(Kind::WrongType, R, 3, 11, "server.listen"),
                "expected text, found the number 8080".to_owned(),
                Some("put it in quotes to make it text".to_owned()),
            ),
            (
                spot(Kind::WrongType, R, 4, 3, "server.api_keys"),
                "expected a list, found a mapping".to_owned(),
                None,
            ),
            (
                spot(Kind::WrongType, M, 1, 1, "models"),
                "expected a list, found a mapping".to_owned(),
                None,
            ),
        ]
    );
}

#[test]
fn values_out_of_range_are_refused_with_the_range() {
    let all = problems(
        "defaults:\n  retry:\n    max_attempts: 101\n  breaker:\n    half_open_permits: 0\n    \
         failure_rate: 50\n  health:\n    timeout: 400d\n",
        "",
    );
    let got: Vec<_> = all
        .iter()
        .map(|d| (at(d), d.message.clone(), d.help.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::OutOfRange, R, 3, 19, "defaults.retry.max_attempts"),
                "101 is out of range: it must be from 1 to 100".to_owned(),
                None,
            ),
            (
                spot(
                    Kind::OutOfRange,
                    R,
                    5,
                    24,
                    "defaults.breaker.half_open_permits"
                ),
                "0 is out of range: it must be from 1 to 1000".to_owned(),
                None,
            ),
            (
                spot(Kind::OutOfRange, R, 6, 19, "defaults.breaker.failure_rate"),
                "5000% is out of range: it must be above 0% and at most 100%".to_owned(),
                Some("a bare number is a share: write 50% for a percentage".to_owned()),
            ),
            (
                spot(Kind::OutOfRange, R, 8, 14, "defaults.health.timeout"),
                "400d is longer than the longest duration accepted, 365d (a year)".to_owned(),
                None,
            ),
        ]
    );
}

#[test]
fn bad_durations_rates_and_sizes_say_how_to_write_them() {
    let all = problems(
        "server:\n  body_limit: 2 megabytes\ndefaults:\n  timeouts:\n    attempt: 30\n    \
         idle: 5 minutes\n    total: 0s\n  breaker:\n    failure_rate: half\n",
        "",
    );
    let got: Vec<_> = all.iter().map(|d| (at(d), d.message.clone())).collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::InvalidValue, R, 2, 15, "server.body_limit"),
                "invalid size: a size is a whole number and a unit: 512B, 64KiB, 1MiB or 1GiB"
                    .to_owned()
            ),
            (
                spot(Kind::InvalidValue, R, 5, 14, "defaults.timeouts.attempt"),
                "`30` has no unit".to_owned()
            ),
            (
                spot(Kind::InvalidValue, R, 6, 11, "defaults.timeouts.idle"),
                "invalid duration: no space goes between a number and its unit: write 5s or 5m"
                    .to_owned()
            ),
            (
                spot(Kind::OutOfRange, R, 7, 12, "defaults.timeouts.total"),
                "must be above zero".to_owned()
            ),
            (
                spot(
                    Kind::InvalidValue,
                    R,
                    9,
                    19,
                    "defaults.breaker.failure_rate"
                ),
                "invalid rate: a rate is written as a percentage (20%) or a share (0.2)".to_owned()
            ),
        ]
    );
    assert_eq!(
        all[1].help.as_deref(),
        Some("write 30s for seconds or 30ms for milliseconds: a plain number is not a duration")
    );
}

#[test]
fn a_route_naming_an_unknown_model_is_reported_with_the_closest_id() {
    let all = problems(
        "",
        "models:\n  - id: gpt-4o\n    base_url: https://api.openai.com\n  - pattern: \
         openrouter/*\n    base_url: https://openrouter.ai/api\nroutes:\n  - name: chat\n    \
         models: [gpt-4o, openrouter/llama, gpt4o, anthropic/claude]\n",
    );
    let got: Vec<_> = all
        .iter()
        .map(|d| (at(d), d.message.clone(), d.help.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::UnknownReference, M, 8, 40, "routes[0].models[2]"),
                "no model `gpt4o`: no id is it and no pattern matches it".to_owned(),
                Some("did you mean `gpt-4o`?".to_owned()),
            ),
            (
                spot(Kind::UnknownReference, M, 8, 47, "routes[0].models[3]"),
                "no model `anthropic/claude`: no id is it and no pattern matches it".to_owned(),
                Some("the models are `gpt-4o` or `openrouter/*`".to_owned()),
            ),
        ]
    );
}

#[test]
fn a_rule_notifying_an_undefined_channel_is_reported() {
    let all = problems(
        "alerts:\n  channels:\n    slack: { kind: slack, webhook: { env: SLACK_URL } }\n    \
         ops: { kind: log }\n  rules:\n    - name: down\n      condition: breaker_open\n      \
         notify: [slak]\n      escalate: { notify: [pager] }\n",
        "",
    );
    let got: Vec<_> = all
        .iter()
        .map(|d| (at(d), d.message.clone(), d.help.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                spot(
                    Kind::UnknownReference,
                    R,
                    8,
                    16,
                    "alerts.rules[0].notify[0]"
                ),
                "no channel named `slak`".to_owned(),
                Some("did you mean `slack`?".to_owned()),
            ),
            (
                spot(
                    Kind::UnknownReference,
                    R,
                    9,
                    28,
                    "alerts.rules[0].escalate.notify[0]"
                ),
                "no channel named `pager`".to_owned(),
                Some("the channels are `slack` or `ops`".to_owned()),
            ),
        ]
    );
}

#[test]
fn a_missing_variable_or_secret_file_is_reported_where_it_is_named() {
    let all = problems(
        "admin:\n  token: { env: HIVE_TEST_UNSET }\nserver:\n  api_keys: [{ env: EMPTY_VAR }, \
         { file: no/such.key }, { env: 1BAD }]\n",
        "",
    );
    let got: Vec<_> = all.iter().map(|d| (at(d), d.message.clone())).collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::MissingEnvVar, R, 2, 17, "admin.token.env"),
                "the environment variable `HIVE_TEST_UNSET` is not set".to_owned()
            ),
            (
                spot(Kind::MissingEnvVar, R, 4, 21, "server.api_keys[0].env"),
                "the environment variable `EMPTY_VAR` is set but empty".to_owned()
            ),
            (
                spot(Kind::MissingSecretFile, R, 4, 42, "server.api_keys[1].file"),
                "the secret file `no/such.key` does not exist".to_owned()
            ),
            (
                spot(Kind::InvalidValue, R, 4, 64, "server.api_keys[2].env"),
                "`1BAD` is not an environment variable name".to_owned()
            ),
        ]
    );
    assert_eq!(
        all[0].help.as_deref(),
        Some(
            "set `HIVE_TEST_UNSET` in the gateway's environment, or read the secret from a \
             file with `{ file: path }`"
        )
    );
}

#[test]
fn duplicates_are_reported_with_the_first_line() {
    // A key given twice is a YAML-level problem, found by the parser.
    let d = only("metrics: true\nmetrics: false\n", "");
    assert_eq!(at(&d), spot(Kind::Duplicate, R, 2, 1, ""));

    let all = problems(
        "alerts:\n  rules:\n    - { name: down, condition: route_down, notify: [log] }\n    \
         - { name: down, condition: breaker_open, notify: [log, log] }\n",
        "models:\n  - id: a\n    base_url: http://127.0.0.1:1\n    headers: { X-Org: a }\n    \
         secret_headers: { x-org: { env: OPENAI_API_KEY } }\n  - id: a\n    base_url: \
         http://127.0.0.1:2\nroutes:\n  - { name: r, models: [a, a] }\n  - { name: r, models: \
         [a] }\n",
    );
    let got: Vec<_> = all
        .iter()
        .map(|d| (at(d), d.message.clone(), d.help.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::Duplicate, R, 4, 15, "alerts.rules[1].name"),
                "a second rule named `down`".to_owned(),
                Some("the first is at line 3; rule names are unique".to_owned()),
            ),
            (
                spot(Kind::Duplicate, R, 4, 60, "alerts.rules[1].notify[1]"),
                "`log` is listed twice".to_owned(),
                None,
            ),
            (
                spot(Kind::Duplicate, M, 5, 23, "models[0].secret_headers.x-org"),
                "the header `x-org` is given twice".to_owned(),
                Some("header names are not case-sensitive; keep one".to_owned()),
            ),
            (
                spot(Kind::Duplicate, M, 6, 9, "models[1].id"),
                "a second model `a`".to_owned(),
                Some("the first is at line 2; each model is listed once".to_owned()),
            ),
            (
                spot(Kind::Duplicate, M, 9, 28, "routes[0].models[1]"),
                "`a` is listed twice in this route".to_owned(),
                Some("a model is tried once per request; remove one".to_owned()),
            ),
            (
                spot(Kind::Duplicate, M, 10, 13, "routes[1].name"),
                "a second route named `r`".to_owned(),
                Some("the first is at line 9; route names are unique".to_owned()),
            ),
        ]
    );
}

#[test]
fn a_pattern_that_can_never_match_is_reported() {
    let all = problems(
        "",
        "models:\n  - pattern: \"*\"\n    base_url: http://127.0.0.1:8000\n  - pattern: \
         openai/*\n    base_url: https://api.openai.com\n  - pattern: gpt-4o\n    base_url: \
         https://api.openai.com\n",
    );
    let got: Vec<_> = all
        .iter()
        .map(|d| (at(d), d.message.clone(), d.help.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::NeverMatches, M, 4, 14, "models[1].pattern"),
                "the pattern `openai/*` can never match: every name it matches goes to `*` \
                 first"
                    .to_owned(),
                Some("patterns are tried in file order: move it above `*` (line 2)".to_owned()),
            ),
            (
                spot(Kind::NeverMatches, M, 6, 14, "models[2].pattern"),
                "the pattern `gpt-4o` has no `*`: it matches only itself".to_owned(),
                Some("write `id: gpt-4o`, or add a `*` such as `gpt-4o*`".to_owned()),
            ),
        ]
    );
}

#[test]
fn settings_that_contradict_each_other_are_reported() {
    let all = problems(
        "defaults:\n  retry:\n    backoff: { base: 5s, max: 10s }\n  breaker:\n    window: { \
         count: 5, time: 1m }\n",
        "models:\n  - id: a\n    pattern: a*\n    base_url: http://127.0.0.1:1\n  - id: b\n    \
         base_url: http://127.0.0.1:1\n    retry: { backoff: { base: 20s } }\n    health: { \
         healthy_threshold: 1 }\n    timeouts: { request: 10s }\n    breaker: { minimum_calls: \
         30 }\n",
    );
    let got: Vec<_> = all.iter().map(|d| (at(d), d.message.clone())).collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::Conflict, R, 5, 25, "defaults.breaker.window.time"),
                "a window counts calls (`count`) or time (`time`), not both".to_owned()
            ),
            (
                spot(Kind::Conflict, M, 3, 5, "models[0].pattern"),
                "a model has an `id` or a `pattern`, not both".to_owned()
            ),
            (
                spot(Kind::Conflict, M, 7, 31, "models[1].retry.backoff.base"),
                "the backoff's max (10s) is below its base (20s)".to_owned()
            ),
            (
                spot(
                    Kind::Conflict,
                    M,
                    8,
                    15,
                    "models[1].health.healthy_threshold"
                ),
                "`healthy_threshold` is the same for every model".to_owned()
            ),
            (
                spot(Kind::Conflict, M, 9, 17, "models[1].timeouts.request"),
                "the request deadline spans every model a request tries".to_owned()
            ),
            (
                spot(Kind::Conflict, M, 10, 31, "models[1].breaker.minimum_calls"),
                "minimum_calls 30 can never be reached by a count window of 20 calls".to_owned()
            ),
        ]
    );
}

#[test]
fn a_missing_required_key_points_at_its_entry() {
    let d = only(
        "",
        "models:\n  - id: gpt-4o\n    api_key: { env: OPENAI_API_KEY }\n",
    );
    assert_eq!(at(&d), spot(Kind::MissingKey, M, 2, 5, "models[0]"));
    assert_eq!(d.message, "`models[0]` needs a `base_url`");
}

#[test]
fn several_errors_of_both_files_come_together_in_file_order() {
    let diagnostics = loader()
        .load("tests/fixtures/many-errors")
        .expect_err("the fixture is broken");
    let got: Vec<_> = diagnostics.iter().map(at).collect();
    assert_eq!(
        got,
        [
            spot(Kind::InvalidValue, R, 3, 11, "server.listen"),
            spot(Kind::InvalidValue, R, 4, 15, "server.body_limit"),
            spot(Kind::OutOfRange, R, 7, 19, "defaults.retry.max_attempts"),
            spot(Kind::InvalidValue, R, 9, 13, "defaults.retry.backoff.base"),
            spot(Kind::OutOfRange, R, 11, 19, "defaults.breaker.failure_rate"),
            spot(Kind::UnknownKey, R, 12, 5, "defaults.breaker.windw"),
            spot(Kind::Conflict, R, 15, 20, "defaults.health.fast_interval"),
            spot(
                Kind::MissingEnvVar,
                R,
                20,
                23,
                "alerts.channels.slack.webhook.env"
            ),
            spot(
                Kind::UnknownReference,
                R,
                24,
                23,
                "alerts.rules[0].notify[1]"
            ),
            spot(Kind::MissingSecretFile, M, 4, 22, "models[0].api_key.file"),
            spot(Kind::Duplicate, M, 5, 9, "models[1].id"),
            spot(Kind::InvalidValue, M, 8, 15, "models[2].base_url"),
            spot(
                Kind::OutOfRange,
                M,
                10,
                21,
                "models[2].breaker.failure_rate"
            ),
            spot(Kind::UnknownReference, M, 13, 22, "routes[0].models[1]"),
        ]
    );
    // The channel whose variable is missing is still a name rules may use: only
    // `pagerduty` is unknown, and the route's `gpt-4o` (whose key file is missing) is known.
    assert_eq!(
        diagnostics
            .iter()
            .filter(|d| d.kind == Kind::UnknownReference)
            .count(),
        2
    );
    let line = diagnostics.as_slice()[0].to_string();
    assert_eq!(
        line,
        "tests/fixtures/many-errors/resilience.yml:3:11: server.listen: `localhost:8080` is \
         not an address and port; help: write an IP address and a port: 127.0.0.1:8080, \
         0.0.0.0:8080 or [::]:8080"
    );
}

#[test]
fn the_report_of_a_typo_reads_like_a_compiler_error() {
    let report = check_config("tests/fixtures/typo", false);
    assert_eq!(report.status, 1);
    assert_eq!(
        report.text,
        "\
error: unknown key `failure_rat`
 --> tests/fixtures/typo/resilience.yml:4:5
  |
4 |     failure_rat: 50%
  |     ^^^^^^^^^^^ defaults.breaker.failure_rat
  |
  = help: did you mean `failure_rate`?

error: the config in tests/fixtures/typo is invalid: 1 error
"
    );
    // With colors, the same text with ANSI escapes.
    let colored = check_config("tests/fixtures/typo", true).text;
    assert!(colored.contains("\u{1b}["));
    assert!(!report.text.contains("\u{1b}["));
}

#[test]
fn file_level_problems_have_no_line() {
    let cases = [
        (
            "tests/fixtures/yaml-extension",
            "found resilience.yaml, but the file is read as resilience.yml",
        ),
        (
            "tests/fixtures/does-not-exist",
            "the config directory does not exist",
        ),
    ];
    for (dir, message) in cases {
        let d = loader().load(dir).expect_err(dir);
        assert_eq!(d.len(), 1);
        let d = &d.as_slice()[0];
        assert_eq!(
            (d.kind, d.line, d.column, d.message.as_str()),
            (Kind::Io, 0, 0, message)
        );
    }
    let syntax = check_config_with(&loader(), "tests/fixtures/syntax", false);
    assert_eq!(
        syntax.text,
        "\
error: invalid YAML: illegal placement of ':' indicator
 --> tests/fixtures/syntax/resilience.yml:3:8
  |
3 | metrics: true
  |        ^

error: the config in tests/fixtures/syntax is invalid: 1 error
"
    );
}

#[test]
fn yaml_shapes_the_schema_has_no_place_for_are_refused() {
    let all = problems(
        "metrics: true\n---\nmetrics: false\n",
        "models:\n  - id: a\n    base_url: http://127.0.0.1:1\n    api_key: !env OPENAI_API_KEY\n    \
         headers: { 1: x }\n  - id: b\n    base_url: http://127.0.0.1:2\n    api_key:\n",
    );
    let got: Vec<_> = all.iter().map(|d| (at(d), d.message.clone())).collect();
    assert_eq!(
        got,
        [
            (
                spot(Kind::Syntax, R, 3, 1, ""),
                "a second YAML document: the file must hold one".to_owned()
            ),
            (
                spot(Kind::WrongType, M, 4, 14, "models[0].api_key"),
                "expected a secret, found a value tagged `!env`".to_owned()
            ),
            (
                spot(Kind::WrongType, M, 5, 16, "models[0].headers"),
                "a key must be text, found the number 1".to_owned()
            ),
            (
                spot(Kind::WrongType, M, 8, 12, "models[1].api_key"),
                "expected a secret, found nothing".to_owned()
            ),
        ]
    );
}

#[test]
fn an_alert_url_with_a_login_is_refused_without_showing_it() {
    let d = only(
        "alerts:\n  channels:\n    slack: { kind: slack, webhook: { env: LOGIN_URL } }\n",
        "",
    );
    assert_eq!(d.kind, Kind::InvalidValue);
    assert_eq!(d.path, "alerts.channels.slack.webhook");
    assert!(d.message.contains("login before its host"), "{}", d.message);
    assert!(!d.to_string().contains("hook-password"), "{d}");
}
