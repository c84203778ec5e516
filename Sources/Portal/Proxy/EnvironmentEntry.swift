import Foundation

/// Where a student enters a ready environment: JupyterLab, or the path the VLE link asks for
/// (`custom_path=lab/tree/week1.ipynb`), always inside the environment's own prefix.
enum EnvironmentEntry {
    static let defaultPath = "lab"

    /// `basePath` followed by `requested` when it is a plain relative path (and query), otherwise by
    /// JupyterLab's path: no scheme, no `..`, no `//`, no backslash, nothing outside the prefix.
    static func path(basePath: String, requested: String?) -> String {
        basePath + (sanitized(requested) ?? defaultPath)
    }

    static func sanitized(_ requested: String?) -> String? {
        guard var path = requested?.trimmingWhitespace(), !path.isEmpty else { return nil }
        while path.hasPrefix("/") { path.removeFirst() }
        let route = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let segments = route.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/%?")
        guard !path.isEmpty, path.allSatisfy({ allowed.contains($0) }), !route.contains("//"), !(segments.first?.contains(":") ?? false) else {
            return nil
        }
        for segment in segments {
            // Decoded, a segment must still be a plain name: no `..`, `.`, and no encoded separator.
            guard let decoded = segment.removingPercentEncoding, decoded != "..", decoded != ".", !decoded.contains("/"), !decoded.contains("\\")
            else { return nil }
        }
        return path
    }
}
