//! Graphs: the original's default graph list (`defgraphs.rsrc`) and graph
//! data, a meter's series averaged into equal slices of a time span.

use crate::conf::{Dict, Node};
use crate::db::{host, views, DbError};
use std::path::Path;

/// One graph: meter, graph id, datum id, title, unit, colour, least max.
type GraphDef = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    f64,
);

/// The original's default graphs.
pub const GRAPHS: [GraphDef; 8] = [
    ("pcpu", "cpu", "usage", "CPU Usage", "%", "blue", 10.0),
    ("io/pwait", "cpu", "iowait", "IO Wait", "%", "blue", 10.0),
    (
        "mem/free",
        "memory",
        "free",
        "Free Memory",
        "KB",
        "blue",
        65536.0,
    ),
    ("link/rtt", "link", "rtt", "RTT", "ms", "blue", 1.0),
    (
        "net/in_kbs",
        "net",
        "input",
        "Bandwidth In",
        "Kb/s",
        "cyan",
        100.0,
    ),
    (
        "net/out_kbs",
        "net",
        "output",
        "Bandwidth Out",
        "Kb/s",
        "blue",
        100.0,
    ),
    (
        "io/rdops",
        "io",
        "read",
        "Read Operations",
        "iops",
        "green",
        100.0,
    ),
    (
        "io/wrops",
        "io",
        "write",
        "Write Operations",
        "iops",
        "red",
        100.0,
    ),
];

/// Why graph data cannot be given.
#[derive(Debug)]
pub enum GraphError {
    /// No such graph and datum.
    Unknown,
    /// A span too short for the number of points, or too many points.
    BadSpan,
    /// The database failed.
    Db(DbError),
}

fn describe(g: &GraphDef) -> Dict {
    let (meter, graph, datum, title, unit, color, max) = *g;
    let mut d = Dict::new();
    d.insert("graph", Node::Str(graph.into()));
    d.insert("datum", Node::Str(datum.into()));
    d.insert("title", Node::Str(title.into()));
    d.insert("unit", Node::Str(unit.into()));
    d.insert("color", Node::Str(color.into()));
    // As the original sends it: its defaults are whole numbers.
    d.insert(
        "max",
        if max.fract() == 0.0 && max.abs() < 1e15 {
            Node::Int(max as i64)
        } else {
            Node::Frac(max)
        },
    );
    d.insert("meter", Node::Str(meter.into()));
    d
}

/// `{"graph": {graph: {datum: {graph, datum, title, unit, color, max,
/// meter}}}}`.
pub fn definitions() -> Node {
    let mut all = Dict::new();
    for g in &GRAPHS {
        let mut graph = all
            .get(g.1)
            .and_then(Node::as_dict)
            .cloned()
            .unwrap_or_default();
        graph.insert(g.2, Node::Dict(describe(g)));
        all.insert(g.1, Node::Dict(graph));
    }
    views::wrap("graph", Node::Dict(all))
}

/// `{"data": [points], "max", "title", "unit", "color", "meter"}`: the
/// meter of graph `graph`/`datum` over the `span` seconds before `now`,
/// averaged into `points` slices (0 where a slice has no sample); `max`
/// is the larger of the graph's least max and the data's.
pub fn data(
    dir: &Path,
    graph: &str,
    datum: &str,
    span: i64,
    points: usize,
    now: i64,
) -> Result<Node, GraphError> {
    let def = GRAPHS
        .iter()
        .find(|g| g.1 == graph && g.2 == datum)
        .ok_or(GraphError::Unknown)?;
    if points == 0 || points > 4096 || span / (points as i64) < 60 {
        return Err(GraphError::BadSpan);
    }
    let from = now - span;
    let series = host::series(dir, def.0, from, now).map_err(GraphError::Db)?;
    let slice = span as f64 / points as f64;
    let mut values = vec![0.0; points];
    for p in host::downsample(&series, from, now, points) {
        let i = (((p.time - from) as f64 / slice).round() as usize).min(points - 1);
        values[i] = p.avg;
    }
    let max = values.iter().copied().fold(def.6, f64::max);
    let mut d = describe(def);
    d.remove("graph");
    d.remove("datum");
    d.insert("max", Node::Frac(max));
    d.insert(
        "data",
        Node::Array(values.into_iter().map(Node::Frac).collect()),
    );
    Ok(Node::Dict(d))
}
