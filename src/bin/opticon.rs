//! `opticon`: the command-line client of opticon-api (see `opticon::cli`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(opticon::cli::run(&args));
}
