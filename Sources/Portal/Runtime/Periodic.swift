import ServiceLifecycle

/// Runs `work` every `interval` until the portal shuts down — at once first when `immediately` —
/// for the services that look at the world periodically (culler, host and spend monitors).
func repeatUntilShutdown(every interval: Duration, immediately: Bool = false, _ work: () async -> Void) async {
    if immediately, !Task.isCancelledOrShuttingDown { await work() }
    while !Task.isCancelledOrShuttingDown {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        if Task.isCancelledOrShuttingDown { return }
        await work()
    }
}
