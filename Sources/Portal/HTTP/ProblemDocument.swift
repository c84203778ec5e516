import Foundation

/// RFC 9457 problem documents (`application/problem+json`), the answer scripts get instead of a page.
enum ProblemDocument {
    /// The document for `status` with a human-readable `detail`.
    static func json(status: Int, title: String, detail: String) -> String {
        #"{"type":"about:blank","title":\#(quoted(title)),"status":\#(status),"detail":\#(quoted(detail))}"#
    }

    /// `text` as a JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
