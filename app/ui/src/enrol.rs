//! The enrolment card's QR text, `ocop-enrol:1?server=<url>&code=<code>`
//! (the server may percent-encode the url), read into server and code.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolLink {
    pub server: String,
    pub code: String,
}

/// Reads a pasted or scanned QR text; `None` when it is not an enrolment link.
pub fn parse(text: &str) -> Option<EnrolLink> {
    let rest = text.trim().strip_prefix("ocop-enrol:1?")?;
    let (mut server, mut code) = (None, None);
    for pair in rest.split('&') {
        let (k, v) = pair.split_once('=')?;
        match k {
            "server" => server = Some(percent_decode(v)?),
            "code" => code = Some(percent_decode(v)?),
            _ => {}
        }
    }
    let (server, code) = (server?, code?);
    (!server.is_empty() && !code.is_empty()).then_some(EnrolLink { server, code })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("ocop-enrol:1?server=http://127.0.0.1:8787&code=K7QP-M2XD")]
    #[case("ocop-enrol:1?server=http%3A%2F%2F127.0.0.1%3A8787&code=K7QP-M2XD")]
    #[case("  ocop-enrol:1?code=K7QP-M2XD&server=http://127.0.0.1:8787\n")]
    fn an_enrolment_link_gives_server_and_code(#[case] text: &str) {
        assert_eq!(
            parse(text),
            Some(EnrolLink {
                server: "http://127.0.0.1:8787".into(),
                code: "K7QP-M2XD".into()
            })
        );
    }

    #[rstest]
    #[case("K7QP-M2XD")]
    #[case("ocop-enrol:2?server=x&code=y")]
    #[case("ocop-enrol:1?server=http://x")]
    #[case("ocop-enrol:1?server=%ZZ&code=y")]
    fn anything_else_is_not_a_link(#[case] text: &str) {
        assert_eq!(parse(text), None);
    }
}
