import Environments
import LTI

/// A column held a value this portal has no case for: a newer portal wrote it (during a rolling
/// upgrade), or someone edited the row by hand. Stores never guess a default for it — an unknown
/// state read as `failed`, or an unknown role as a learner, would act on a record it does not
/// understand — they stop with this error, which says where the value is and what was expected.
struct UnknownStoredValue: Error, CustomStringConvertible, Equatable {
    /// Where the value was read: `environments`, `sessions`, …
    var table: String
    var column: String
    var value: String
    /// The values this portal knows for the column.
    var known: [String]

    var description: String {
        "The database holds \"\(value)\" in \(table).\(column), which this portal does not know (it knows \(known.joined(separator: ", "))). "
            + "A newer portal may have written it: upgrade every replica to the same version, or correct the row."
    }
}

extension RawRepresentable where Self: CaseIterable, RawValue == String {
    /// The case whose raw value is `text`, read from `table`.`column`.
    /// - Throws: ``UnknownStoredValue`` when there is none.
    static func stored(_ text: String, table: String, column: String) throws -> Self {
        guard let value = Self(rawValue: text) else {
            throw UnknownStoredValue(table: table, column: column, value: text, known: allCases.map(\.rawValue))
        }
        return value
    }
}

/// A budget alert's level (`spend_alerts.level`): the course has committed most of its budget for
/// the period, or all of it.
enum SpendAlertLevel: String, Sendable, CaseIterable {
    case warning, spent
}
