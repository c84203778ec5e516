/// Splits a SQL file into single statements, because postgres-nio's extended protocol runs one
/// statement at a time. Understands `'…'` strings, `"…"` identifiers, `--` and nested `/* */`
/// comments and `$tag$ … $tag$` bodies, so a `;` inside any of them does not split.
enum SQLScript {
    static func statements(in script: String) -> [String] {
        let chars = Array(script.unicodeScalars)
        var statements = [String]()
        var current = String.UnicodeScalarView()
        var index = 0

        func flush() {
            let text = String(current).trimmingWhitespace()
            if !text.isEmpty, !text.allSatisfy({ $0 == ";" }) { statements.append(text) }
            current = String.UnicodeScalarView()
        }
        func copy(through end: Int) {
            let upper = min(end, chars.count - 1)
            if index <= upper { current.append(contentsOf: chars[index...upper]) }
            index = upper + 1
        }

        while index < chars.count {
            let c = chars[index]
            let next: Unicode.Scalar? = index + 1 < chars.count ? chars[index + 1] : nil
            switch c {
            case "'", "\"":
                var end = index + 1
                while end < chars.count {
                    if chars[end] == c {
                        if end + 1 < chars.count, chars[end + 1] == c { end += 2; continue }
                        break
                    }
                    end += 1
                }
                copy(through: end)
            case "-" where next == "-":
                var end = index
                while end < chars.count, chars[end] != "\n" { end += 1 }
                index = end  // comments are dropped
            case "/" where next == "*":
                var depth = 0
                var end = index
                while end < chars.count {
                    if chars[end] == "/", end + 1 < chars.count, chars[end + 1] == "*" { depth += 1; end += 2; continue }
                    if chars[end] == "*", end + 1 < chars.count, chars[end + 1] == "/" {
                        depth -= 1
                        end += 2
                        if depth == 0 { break }
                        continue
                    }
                    end += 1
                }
                index = end
            case "$":
                if let tag = dollarTag(chars, at: index) {
                    let tagScalars = Array(tag.unicodeScalars)
                    var end = index + tagScalars.count
                    var closed = false
                    while end + tagScalars.count <= chars.count {
                        if Array(chars[end..<(end + tagScalars.count)]) == tagScalars {
                            closed = true
                            break
                        }
                        end += 1
                    }
                    copy(through: closed ? end + tagScalars.count - 1 : chars.count - 1)
                } else {
                    copy(through: index)
                }
            case ";":
                flush()
                index += 1
            default:
                current.append(c)
                index += 1
            }
        }
        flush()
        return statements
    }

    /// The `$tag$` starting at `start`, if one does (`$$` or `$name$` where name is an identifier).
    private static func dollarTag(_ chars: [Unicode.Scalar], at start: Int) -> String? {
        var end = start + 1
        while end < chars.count, chars[end] == "_" || chars[end].properties.isAlphabetic || (end > start + 1 && chars[end].properties.numericType != nil) {
            end += 1
        }
        guard end < chars.count, chars[end] == "$" else { return nil }
        return String(String.UnicodeScalarView(chars[start...end]))
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
