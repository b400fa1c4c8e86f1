//! `opticon-loadgen`: a simulated fleet for load tests (see `opticon::loadgen`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(opticon::loadgen::run(&args));
}
