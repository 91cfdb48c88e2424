#[test]
fn show() {
    let s = "-2.897252643690549e+90";
    let want: f64 = s.parse().unwrap();
    let j: serde_json::Value = serde_json::from_str(s).unwrap();
    let y: serde_json::Value = serde_saphyr::from_str(s).unwrap();
    println!("want {want:e} json {j} saphyr {y}");
}
