//! The sloppy-JSON config language.

use opticon::conf::{self, parse, Node, ParseErrorKind};

#[test]
fn sloppy_syntax_without_colons_or_commas() {
    let d = parse(
        "network { port 1047 address 0.0.0.0 }\n\
         database { path: /var/opticon/db }\n\
         probes { net { type built-in interval 60 options { skip [lo docker*] } } }\n",
    )
    .unwrap();
    let root = Node::Dict(d);
    assert_eq!(root.path("network/port"), Some(&Node::Int(1047)));
    assert_eq!(
        root.path("network/address").and_then(Node::as_str),
        Some("0.0.0.0")
    );
    assert_eq!(
        root.path("database/path").and_then(Node::as_str),
        Some("/var/opticon/db")
    );
    assert_eq!(
        root.path("probes/net/options/skip"),
        Some(&Node::Array(vec![
            Node::Str("lo".into()),
            Node::Str("docker*".into())
        ]))
    );
}

#[test]
fn json_with_comments_and_new_literals() {
    let d = parse(
        r#"{
            # a comment where a key is expected
            "a": -5,          # after a value
            "b": 1.5e3, "c": true, "d": false, "e": null,
            "f": "tab\there \u00e9 \ud83d\ude00 \q",
            "g": = 2,
            h: "x"
        }"#,
    );
    // `"g": = 2` has two separators: the second is not a value.
    assert!(d.is_err());
    let d = parse(
        r#"{ "a": -5, "b": 1.5e3, "c": true, "d": false, "e": null, "f": "tab\there \u00e9 \ud83d\ude00 \q", g = .5 }"#,
    )
    .unwrap();
    assert_eq!(d.get("a"), Some(&Node::Int(-5)));
    assert_eq!(d.get("b"), Some(&Node::Frac(1500.0)));
    assert_eq!(d.get("c"), Some(&Node::Bool(true)));
    assert_eq!(d.get("d"), Some(&Node::Bool(false)));
    assert_eq!(d.get("e"), Some(&Node::Null));
    assert_eq!(d.get("f").and_then(Node::as_str), Some("tab\there é 😀 q"));
    assert_eq!(d.get("g"), Some(&Node::Frac(0.5)));
}

#[test]
fn word_typing() {
    let d = parse("a 42 b \"42\" c 10.0.0.1 d 1. e -x f 9223372036854775807 g 1e5x").unwrap();
    assert_eq!(d.get("a"), Some(&Node::Int(42)));
    assert_eq!(
        d.get("b"),
        Some(&Node::Str("42".into())),
        "quoted values are strings"
    );
    assert_eq!(d.get("c"), Some(&Node::Str("10.0.0.1".into())));
    assert_eq!(d.get("d"), Some(&Node::Frac(1.0)));
    assert_eq!(d.get("e"), Some(&Node::Str("-x".into())));
    assert_eq!(d.get("f"), Some(&Node::Int(i64::MAX)));
    assert_eq!(d.get("g"), Some(&Node::Str("1e5x".into())));
}

#[test]
fn errors_name_line_and_column() {
    let e = parse("a 1\nb <\n").unwrap_err();
    assert_eq!((e.line, e.column), (2, 3));
    assert_eq!(e.kind, ParseErrorKind::ExpectedValue('<'));
    assert_eq!(
        e.to_string(),
        "line 2, column 3: expected a value, found '<'"
    );
    let e = parse("x 99999999999999999999").unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::IntegerOutOfRange(_)));
    let e = parse("s \"open").unwrap_err();
    assert_eq!(
        (e.line, e.column, e.kind),
        (1, 3, ParseErrorKind::UnterminatedString)
    );
    let e = parse("{ a 1 } b").unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::TrailingText('b'));
    let deep = format!("a {}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(parse(&deep).unwrap_err().kind, ParseErrorKind::TooDeep);
    assert_eq!(
        parse("s \"\\u12\"").unwrap_err().kind,
        ParseErrorKind::BadEscape
    );
    assert_eq!(
        parse("s \"\\ud800x\"").unwrap_err().kind,
        ParseErrorKind::BadEscape
    );
}

#[test]
fn files_layer_and_merge() {
    let dir = std::env::temp_dir().join(format!("opticon-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base.conf");
    let over = dir.join("over.conf");
    std::fs::write(&base, "network { port 1047 address 0.0.0.0 } list [1 2 3]").unwrap();
    std::fs::write(&over, "network { port 2000 } list [9]").unwrap();
    let tree = Node::Dict(conf::load_layered(&[&base, &over]).unwrap());
    assert_eq!(tree.path("network/port"), Some(&Node::Int(2000)));
    assert_eq!(
        tree.path("network/address").and_then(Node::as_str),
        Some("0.0.0.0"),
        "dicts merge"
    );
    assert_eq!(
        tree.path("list"),
        Some(&Node::Array(vec![Node::Int(9)])),
        "arrays replace"
    );
    std::fs::write(&over, "network {\n port = }").unwrap();
    let err = conf::load_layered(&[&base, &over]).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:2:9:", over.display())),
        "{err}"
    );
    let missing = conf::load_file(&dir.join("nope.conf"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope.conf"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_output_round_trips() {
    let text = "a { b [1 2.5 \"x\\u0001\" null true] c { } } d []";
    let d = parse(text).unwrap();
    let node = Node::Dict(d.clone());
    for pretty in [false, true] {
        let json = node.to_json(pretty);
        assert_eq!(Node::Dict(parse(&json).unwrap()), node, "{json}");
    }
    assert_eq!(
        node.to_json(false),
        r#"{"a":{"b":[1,2.5,"x\u0001",null,true],"c":{}},"d":[]}"#
    );
}
