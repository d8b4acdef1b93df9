//! `token new` and `token revoke` on a real tokens file.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::{run, Ran, Sandbox};

/// `waygate token new --actor ACTOR --role ROLE... --file FILE` in the sandbox.
fn token_new(sb: &Sandbox, actor: &str, roles: &[&str], file: &str) -> Ran {
    let mut args = vec!["token", "new", "--actor", actor, "--file", file];
    for role in roles {
        args.extend(["--role", role]);
    }
    run(sb.path(), &args)
}

#[test]
fn token_new_prints_the_token_alone_and_keeps_only_its_hash() {
    let sb = Sandbox::new();
    let ran = token_new(&sb, "ana", &["operator", "approver"], "tokens.ron");
    ran.code(0);
    let token = ran.stdout.trim_end_matches('\n');
    assert_eq!(ran.stdout, format!("{token}\n"));
    assert!(token.starts_with("wgt_") && token.len() == 68, "{token}");
    ran.stderr_has("ana (operator, approver)");
    let path = sb.path().join("tokens.ron");
    let text = std::fs::read_to_string(&path).expect("tokens file");
    assert!(
        !text.contains(&token[4..]),
        "the token itself is in the file:\n{text}"
    );
    assert!(text.contains("\"ana\""), "{text}");
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the tokens file is private to its owner"
    );
    // A second token for the same actor is refused and changes nothing.
    let again = token_new(&sb, "ana", &["admin"], "tokens.ron");
    again.code(1);
    assert!(again.stdout.is_empty());
    again.stderr_has("already has a token");
    assert_eq!(std::fs::read_to_string(&path).expect("file"), text);
}

#[test]
fn token_revoke_removes_the_entry_and_says_when_there_is_none() {
    let sb = Sandbox::new();
    for actor in ["ana", "bob"] {
        token_new(&sb, actor, &["auditor"], "t.ron").code(0);
    }
    run(
        sb.path(),
        &["token", "revoke", "--actor", "ana", "--file", "t.ron"],
    )
    .code(0);
    let text = std::fs::read_to_string(sb.path().join("t.ron")).expect("file");
    assert!(
        !text.contains("\"ana\"") && text.contains("\"bob\""),
        "{text}"
    );
    let ran = run(
        sb.path(),
        &["token", "revoke", "--actor", "ana", "--file", "t.ron"],
    );
    ran.code(1).stderr_has("ana has no token");
}

/// `Ana` is `ana` (the approval rules compare names without regard to case): a second token
/// for her under another case is refused, naming the holder, and revoking `ANA` revokes hers.
#[test]
fn a_token_for_a_name_differing_only_by_case_is_refused() {
    let sb = Sandbox::new();
    let new = |actor: &str| token_new(&sb, actor, &["approver"], "t.ron");
    new("ana").code(0);
    let text = std::fs::read_to_string(sb.path().join("t.ron")).expect("file");
    let again = new("Ana");
    again.code(1);
    assert!(again.stdout.is_empty());
    again.stderr_has("ana already has a token");
    assert_eq!(
        std::fs::read_to_string(sb.path().join("t.ron")).expect("file"),
        text
    );
    run(
        sb.path(),
        &["token", "revoke", "--actor", "ANA", "--file", "t.ron"],
    )
    .code(0);
    new("Ana").code(0);
}

#[test]
fn token_new_refuses_bad_roles_and_actor_names() {
    let sb = Sandbox::new();
    // (args, exit)
    let cases: [(&[&str], i32); 4] = [
        (&["--actor", "ana", "--role", "root"], 2),
        (&["--actor", "ana"], 2),
        (&["--actor", "ana b", "--role", "admin"], 2),
        (&["--actor", "ana\u{1b}[2J", "--role", "admin"], 2),
    ];
    for (args, exit) in cases {
        let mut all = vec!["token", "new", "--file", "t.ron"];
        all.extend_from_slice(args);
        let ran = run(sb.path(), &all);
        ran.code(exit);
        assert!(ran.stdout.is_empty(), "{args:?}");
        assert!(!ran.stderr.contains('\u{1b}'), "{}", ran.stderr);
    }
    assert!(!sb.path().join("t.ron").exists());
}

/// A tokens file edited by hand so that one person holds two entries (`ana` an approver, `Ana`
/// an admin: one person to the approval rules, two identities to the server) is refused when
/// read, naming both, as `token new` refuses to write it.
#[test]
fn a_tokens_file_giving_one_person_two_entries_is_refused() {
    let sb = Sandbox::new();
    let new = |actor: &str, file: &str| {
        run(
            sb.path(),
            &[
                "token", "new", "--actor", actor, "--role", "approver", "--file", file,
            ],
        )
    };
    new("ana", "one.ron").code(0);
    new("Ana", "two.ron").code(0);
    // The entries are what lies between `tokens: [` and the list's closing `]`.
    let read = |file: &str| std::fs::read_to_string(sb.path().join(file)).expect("file");
    let (one, two) = (read("one.ron"), read("two.ron"));
    let entries = |text: &str| {
        let start = text.find("tokens: [").expect("a list") + "tokens: [".len();
        let end = text.rfind(']').expect("its end");
        (start, end)
    };
    let (start, end) = entries(&two);
    let (_, at) = entries(&one);
    sb.write(
        "one.ron",
        &format!("{}{}{}", &one[..at], &two[start..end], &one[at..]),
    );
    let ran = new("carol", "one.ron");
    ran.code(1).stderr_has("`ana` and `Ana` are one person");
}
