import ArgumentParser
import Foundation

/// `portal report usage`: what environments ran and cost, for finance and module teams.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Reports from the usage records.",
        subcommands: [Usage.self]
    )

    struct Usage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Runs, refused starts, resource-hours and cost for a period, grouped.",
            discussion: """
                A run belongs to the period it was requested in; a run still going is counted up to now. \
                Each run's cost is rounded to the cent before it is added, so totals add up to the cent.
                """
        )
        @OptionGroup var options: ConfigOptions
        @Option(help: "First day, YYYY-MM-DD (UTC).") var from: String
        @Option(help: "Last day, YYYY-MM-DD (UTC), included.") var to: String
        @Option(help: "Group by course, profile, host or user.") var by: String = "course"
        @Option(help: "csv (RFC 4180) or json.") var format: String = "csv"

        func run() async throws {
            try await reportingErrors {
                guard let grouping = UsageReport.Grouping(rawValue: by) else {
                    throw CLIError("--by must be one of \(UsageReport.Grouping.allCases.map(\.rawValue).joined(separator: ", ")), not \(by)")
                }
                guard format == "csv" || format == "json" else { throw CLIError("--format must be csv or json, not \(format)") }
                let start = try Self.day(from, option: "--from")
                let end = try Self.day(to, option: "--to").addingTimeInterval(86_400)
                guard start < end else { throw CLIError("--to must not be before --from") }
                let report = try await options.withDatabase { database, _, _ in
                    try await UsageReport.load(database.client, from: start, to: end, by: grouping)
                }
                if format == "csv" {
                    FileHandle.standardOutput.write(Data(report.csv().utf8))
                } else {
                    FileHandle.standardOutput.write(try report.json() + Data("\n".utf8))
                }
            }
        }

        static func day(_ text: String, option: String) throws -> Date {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(secondsFromGMT: 0)
            formatter.dateFormat = "yyyy-MM-dd"
            guard let date = formatter.date(from: text) else { throw CLIError("\(option) must be a date as YYYY-MM-DD, not \(text)") }
            return date
        }
    }
}
