//! A tour of nimbus on a temporary directory; it grows with every service.

fn main() {
    println!("nimbus tour: nothing to show yet");
}
