using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace IdentityService.Data.Migrations.PostgreSql
{
    /// <inheritdoc />
    public partial class AuditLog : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "AuditEvents",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    TenantId = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    Time = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    Type = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    Outcome = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    Ip = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    UserId = table.Column<Guid>(type: "uuid", nullable: true),
                    ClientId = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    Actor = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    Reason = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    DecidedBy = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    Identifier = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: true),
                    Country = table.Column<string>(type: "character varying(2)", maxLength: 2, nullable: true),
                    UserAgent = table.Column<string>(type: "character varying(512)", maxLength: 512, nullable: true),
                    Trace = table.Column<string>(type: "text", nullable: true),
                    Details = table.Column<string>(type: "text", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_AuditEvents", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_AuditEvents_TenantId",
                table: "AuditEvents",
                column: "TenantId");

            migrationBuilder.CreateIndex(
                name: "IX_AuditEvents_TenantId_Id",
                table: "AuditEvents",
                columns: new[] { "TenantId", "Id" });

            migrationBuilder.CreateIndex(
                name: "IX_AuditEvents_TenantId_Time",
                table: "AuditEvents",
                columns: new[] { "TenantId", "Time" });

            // The sign-in log and the policy's change history become the audit log, in the order they happened.
            migrationBuilder.Sql(@"INSERT INTO ""AuditEvents"" (""TenantId"", ""Time"", ""Type"", ""Outcome"", ""Ip"", ""UserId"", ""ClientId"", ""Actor"", ""Reason"", ""DecidedBy"", ""Identifier"", ""Country"", ""UserAgent"", ""Trace"", ""Details"") SELECT e.""TenantId"", e.""Time"", e.""Type"", e.""Outcome"", e.""Ip"", e.""UserId"", e.""ClientId"", e.""Actor"", e.""Reason"", e.""DecidedBy"", e.""Identifier"", e.""Country"", e.""UserAgent"", e.""Trace"", e.""Details"" FROM (SELECT ""TenantId"" AS ""TenantId"", ""Time"" AS ""Time"", 'signin.' || ""Outcome"" AS ""Type"", ""Outcome"" AS ""Outcome"", ""Ip"" AS ""Ip"", ""UserId"" AS ""UserId"", ""ClientId"" AS ""ClientId"", NULL::text AS ""Actor"", ""Reason"" AS ""Reason"", ""DecidedBy"" AS ""DecidedBy"", ""Identifier"" AS ""Identifier"", ""Country"" AS ""Country"", ""UserAgent"" AS ""UserAgent"", ""Trace"" AS ""Trace"", NULL::text AS ""Details"" FROM ""SignInEvents"" UNION ALL SELECT ""TenantId"" AS ""TenantId"", ""Time"" AS ""Time"", 'policy.changed' AS ""Type"", 'succeeded' AS ""Outcome"", NULL::text AS ""Ip"", NULL::uuid AS ""UserId"", NULL::text AS ""ClientId"", ""Actor"" AS ""Actor"", NULL::text AS ""Reason"", NULL::text AS ""DecidedBy"", NULL::text AS ""Identifier"", NULL::text AS ""Country"", NULL::text AS ""UserAgent"", NULL::text AS ""Trace"", '{""before"":' || ""Before"" || ',""after"":' || ""After"" || '}' AS ""Details"" FROM ""PolicyChanges"") AS e ORDER BY e.""Time"";");

            migrationBuilder.DropTable(
                name: "PolicyChanges");

            migrationBuilder.DropTable(
                name: "SignInEvents");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "AuditEvents");

            migrationBuilder.CreateTable(
                name: "PolicyChanges",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    Actor = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    After = table.Column<string>(type: "text", nullable: false),
                    Before = table.Column<string>(type: "text", nullable: false),
                    TenantId = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    Time = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_PolicyChanges", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "SignInEvents",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    ClientId = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    Country = table.Column<string>(type: "character varying(2)", maxLength: 2, nullable: true),
                    DecidedBy = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    Identifier = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    Ip = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    Outcome = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    Reason = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    TenantId = table.Column<string>(type: "character varying(63)", maxLength: 63, nullable: false),
                    Time = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    Trace = table.Column<string>(type: "text", nullable: false),
                    UserAgent = table.Column<string>(type: "character varying(512)", maxLength: 512, nullable: true),
                    UserId = table.Column<Guid>(type: "uuid", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_SignInEvents", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_PolicyChanges_TenantId",
                table: "PolicyChanges",
                column: "TenantId");

            migrationBuilder.CreateIndex(
                name: "IX_PolicyChanges_TenantId_Time",
                table: "PolicyChanges",
                columns: new[] { "TenantId", "Time" });

            migrationBuilder.CreateIndex(
                name: "IX_SignInEvents_TenantId",
                table: "SignInEvents",
                column: "TenantId");

            migrationBuilder.CreateIndex(
                name: "IX_SignInEvents_TenantId_Time",
                table: "SignInEvents",
                columns: new[] { "TenantId", "Time" });
        }
    }
}
