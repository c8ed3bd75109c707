using System.ComponentModel.DataAnnotations;

namespace IdentityService.Data;

public enum DatabaseProvider
{
    Sqlite,
    PostgreSql,
    SqlServer,
}

/// <summary>The <c>Database</c> section.</summary>
public sealed class DatabaseOptions
{
    public const string Section = "Database";

    /// <summary><c>Sqlite</c> (default), <c>PostgreSql</c> or <c>SqlServer</c>. The connection string is <c>ConnectionStrings:Identity</c>.</summary>
    public DatabaseProvider Provider { get; set; } = DatabaseProvider.Sqlite;

    /// <summary>Folder of the SQLite file when no connection string is given. Default: <c>data</c>.</summary>
    [Required]
    public string DataDirectory { get; set; } = "data";

    /// <summary>Apply pending migrations at start. Default: true. Operators who migrate separately run the service with <c>migrate</c>.</summary>
    public bool MigrateAtStart { get; set; } = true;

    /// <summary>
    /// Minutes between passes of <see cref="Pruning"/>, which deletes expired sign-ins, codes, challenges and links.
    /// Default: 60; 0 turns it off.
    /// </summary>
    [Range(0, 10_080)]
    public int PruneIntervalMinutes { get; set; } = 60;
}
