//! RFC 3676 format=flowed text, unwrapped before extraction.

/// Joins the soft line breaks of RFC 3676 format=flowed text.
///
/// Trailing line breaks are set aside and put back as they were, in a loop: a reply may end in
/// tens of thousands of them, and handling them one call deeper each overflowed the stack.
pub(super) fn unflow(text: &str, delsp: bool) -> String {
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    let mut out = unflow_lines(body, delsp);
    out.extend(std::iter::repeat_n('\n', trailing));
    out
}

/// [`unflow`] for a text that does not end in a line break.
pub(super) fn unflow_lines(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut joining = false;
    let mut joining_depth = 0;
    for line in text.split('\n') {
        let depth = line.bytes().take_while(|b| *b == b'>').count();
        let mut content = &line[depth..];
        if joining && depth != joining_depth {
            // RFC 3676 4.5: a flowed line never joins one of another quote depth ("> Hi " then
            // the person's "Hello" stay two lines).
            out.push('\n');
            joining = false;
        }
        if joining {
            content = content.strip_prefix(' ').unwrap_or(content);
        } else {
            out.push_str(&line[..depth]);
            if depth > 0 && !content.starts_with(' ') {
                out.push(' ');
            }
        }
        let soft = content.ends_with(' ') && content != "-- ";
        if soft {
            out.push_str(if delsp {
                &content[..content.len() - 1]
            } else {
                content
            });
        } else {
            out.push_str(content);
            out.push('\n');
        }
        joining = soft;
        joining_depth = depth;
    }
    if out.ends_with('\n') && !text.ends_with('\n') {
        out.pop();
    }
    out
}
