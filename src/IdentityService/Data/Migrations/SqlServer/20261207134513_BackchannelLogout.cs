using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace IdentityService.Data.Migrations.SqlServer
{
    /// <inheritdoc />
    public partial class BackchannelLogout : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "SessionId",
                table: "OpenIddictAuthorizations",
                type: "nvarchar(64)",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<bool>(
                name: "BackchannelLogoutSessionRequired",
                table: "OpenIddictApplications",
                type: "bit",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<string>(
                name: "BackchannelLogoutUri",
                table: "OpenIddictApplications",
                type: "nvarchar(2000)",
                maxLength: 2000,
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_OpenIddictAuthorizations_TenantId_SessionId",
                table: "OpenIddictAuthorizations",
                columns: new[] { "TenantId", "SessionId" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_OpenIddictAuthorizations_TenantId_SessionId",
                table: "OpenIddictAuthorizations");

            migrationBuilder.DropColumn(
                name: "SessionId",
                table: "OpenIddictAuthorizations");

            migrationBuilder.DropColumn(
                name: "BackchannelLogoutSessionRequired",
                table: "OpenIddictApplications");

            migrationBuilder.DropColumn(
                name: "BackchannelLogoutUri",
                table: "OpenIddictApplications");
        }
    }
}
