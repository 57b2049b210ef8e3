//! protocol.md's cluster examples, for the unit tests that check the
//! server builds their exact bytes (a live session cannot reach those states).

/// The response bytes of protocol.md's cluster example `name`.
pub(crate) fn documented_response(name: &str) -> Vec<u8> {
    documented_block(name, "```hex response")
}

/// The request bytes of protocol.md's cluster example `name`.
pub(crate) fn documented_request(name: &str) -> Vec<u8> {
    documented_block(name, "```hex request")
}

fn documented_block(name: &str, fence: &str) -> Vec<u8> {
    let doc = include_str!("../../../../protocol.md");
    let marker = format!("<!-- cluster-example: {name} -->");
    let from = doc.find(&marker).unwrap_or_else(|| panic!("protocol.md has no {marker}"));
    let block = doc[from..].split(fence).nth(1).expect("a hex block");
    let block = &block[..block.find("```").expect("the block's end")];
    let hex = block.lines().flat_map(|l| l.split('#').next().unwrap_or("").split_whitespace());
    hex.map(|b| u8::from_str_radix(b, 16).expect("hex byte")).collect()
}
