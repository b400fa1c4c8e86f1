//! `opticon-agent`: the host agent (see `opticon::agent`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(opticon::agent::run(&args));
}
