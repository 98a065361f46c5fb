# Homebrew formula for nuaws: a Nushell with AWS built in.
class Nuaws < Formula
  desc "Nushell with native AWS S3 and EC2 commands, streaming and caching"
  homepage "https://github.com/nuaws/nuaws"
  url "https://github.com/nuaws/nuaws/archive/refs/tags/v0.1.0.tar.gz"
  # sha256 is filled in by the release job from the tarball above.
  license "MIT"
  head "https://github.com/nuaws/nuaws.git", branch: "main"

  depends_on "rust" => :build

  def install
    system "cargo", "install", "--locked", *std_cargo_args
  end

  test do
    assert_match "nushell 0.115.1", shell_output("#{bin}/nuaws --version")
    assert_equal "3", shell_output("#{bin}/nuaws -n -c '[1 2 3] | length'").strip
    assert_match "aws s3 ls", shell_output("#{bin}/nuaws -n -c 'aws s3'")
  end
end
