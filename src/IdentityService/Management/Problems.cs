namespace IdentityService.Management;

/// <summary>
/// problem+json answers (RFC 9457) of the management API. Each carries a stable <c>code</c> a script
/// can test, besides the human-readable title and detail.
/// </summary>
public static class Problems
{
    public static IResult Validation(IDictionary<string, string[]> errors, string? detail = null) =>
        Results.Problem(
            statusCode: StatusCodes.Status400BadRequest,
            title: "The request is invalid.",
            detail: detail ?? "See the errors for each invalid field.",
            extensions: new Dictionary<string, object?> { ["code"] = "validation_failed", ["errors"] = errors });

    public static IResult Validation(string field, string message) =>
        Validation(new Dictionary<string, string[]> { [field] = [message] });

    public static IResult Status(int status, string code, string title, string? detail = null) =>
        Results.Problem(statusCode: status, title: title, detail: detail, extensions: new Dictionary<string, object?> { ["code"] = code });

    public static IResult NotFound(string code, string title) => Status(StatusCodes.Status404NotFound, code, title);

    public static IResult Conflict(string code, string title) => Status(StatusCodes.Status409Conflict, code, title);
}
